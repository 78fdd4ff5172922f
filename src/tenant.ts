export const TENANT_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const DEFAULT_TENANT = 'default';

export const SCOPES = ['jobs:read', 'jobs:write', 'metrics:read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** Who is calling, from a verified token. */
export type Principal = {
  sub: string;
  tenant: string;
  scopes: ReadonlySet<string>;
  isAdmin: boolean;
};

/** The tenant whose data a principal may see; `undefined` means every tenant (admin). */
export function visibleTenant(p: Principal): string | undefined {
  return p.isAdmin ? undefined : p.tenant;
}
