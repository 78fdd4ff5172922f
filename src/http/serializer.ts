import fastJson from 'fast-json-stringify';
import type { FastifySerializerCompiler } from 'fastify';
import { z } from 'zod';

/**
 * Responses are written by fast-json-stringify from the JSON Schema of each
 * route's zod response schema: only the documented fields go out (a field the
 * schema does not name is dropped, a required one that is missing is an
 * error), without a zod validation pass over every response. Status reads
 * are what pollers hammer; this halves the cost of writing one.
 */
export const serializerCompiler: FastifySerializerCompiler<z.ZodType> = ({ schema }) => {
  const json = z.toJSONSchema(schema, { target: 'draft-07', io: 'output', unrepresentable: 'any' }) as Record<string, unknown>;
  delete json.$schema;
  return fastJson(json);
};
