// The live page of one job: /ui/jobs/{jobId}#token=...
// It takes the bearer token from the URL fragment (which browsers never send to the server) and removes it from
// the address bar at once, or from the paste box; keeps it in this tab only (sessionStorage); trades it for a
// 60-second stream ticket (EventSource cannot send an Authorization header); and follows the job's event stream,
// reconnecting with Last-Event-ID so no log line is lost or shown twice.
const TOKEN_KEY = 'jobs-api-token';
const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'removed']);
const el = (id) => document.querySelector(`[data-testid="${id}"]`);

const jobId = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() ?? '');
let token = null;
let source = null;
let lastEventId = null;
let ended = false;
let retryMs = 1000;
const lines = [];
let shownLines = 0;

function tokenFromFragment() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

function setConnection(text) {
  el('connection').textContent = text;
}

function showError(message) {
  const box = el('error');
  box.textContent = message ?? '';
  box.hidden = !message;
}

function askForToken(message) {
  showError(message);
  setConnection('waiting for a token');
  el('token-form').hidden = false;
  document.getElementById('token').focus();
}

function renderJob(job) {
  const state = el('state');
  state.textContent = job.state;
  state.className = `state ${job.state}`;
  renderProgress(job.progress);
  el('type').textContent = job.type ?? '';
  el('server').textContent = job.data?.serverId ?? '';
  el('attempts').textContent = `${job.attempts ?? 0} of ${job.maxAttempts ?? '?'}`;
  document.title = `${job.state} · ${job.type ?? 'job'} · Jobs API`;
  if (job.state === 'completed' || job.state === 'failed' || job.state === 'cancelled') {
    el('outcome').hidden = false;
    el('result').textContent =
      job.state === 'completed' ? JSON.stringify(job.result, null, 2) : job.state === 'cancelled' ? 'cancelled: stopped on request' : job.failedReason ?? 'failed';
  }
}

function renderProgress(value) {
  const n = typeof value === 'number' ? Math.max(0, Math.min(100, Math.round(value))) : 0;
  el('progress').textContent = String(n);
  el('progress-bar').value = n;
}

function addLine(index, line) {
  lines[index] = line;
  // Lines arrive in order; after a reconnect the server resends none we had (Last-Event-ID).
  const log = el('log');
  while (shownLines < lines.length && lines[shownLines] !== undefined) {
    log.append(`${lines[shownLines]}\n`);
    shownLines += 1;
  }
  log.scrollTop = log.scrollHeight;
}

function onEvent(type, event) {
  if (event.lastEventId) lastEventId = event.lastEventId;
  const data = JSON.parse(event.data);
  if (type === 'progress') renderProgress(data.progress);
  else if (type === 'log') addLine(data.index, data.line);
  else if (type === 'removed') {
    el('state').textContent = 'removed';
    el('state').className = 'state removed';
  } else renderJob(data);
  if (TERMINAL.has(type)) {
    ended = true;
    source?.close();
    setConnection('ended');
  }
}

async function connect() {
  if (ended) return;
  let res;
  try {
    res = await fetch(`/api/jobs/${encodeURIComponent(jobId)}/stream-ticket`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  } catch {
    return retryLater('the API cannot be reached');
  }
  const body = await res.json().catch(() => null);
  if (res.status === 401 || res.status === 403) {
    sessionStorage.removeItem(TOKEN_KEY);
    token = null;
    return askForToken(`${body?.error?.message ?? 'The token was refused.'} Paste another one.`);
  }
  if (res.status === 404) {
    setConnection('not found');
    return showError(body?.error?.message ?? `Job ${jobId} was not found.`);
  }
  if (!res.ok) return retryLater(body?.error?.message ?? `the API answered ${res.status}`, Number(res.headers.get('retry-after')) * 1000);
  showError(null);
  el('token-form').hidden = true;
  let url = body.data.url;
  if (lastEventId !== null) url += `&lastEventId=${encodeURIComponent(lastEventId)}`;
  source = new EventSource(url);
  source.addEventListener('open', () => {
    setConnection('live');
    retryMs = 1000;
  });
  for (const type of ['snapshot', 'progress', 'log', 'completed', 'failed', 'cancelled', 'removed']) {
    source.addEventListener(type, (event) => onEvent(type, event));
  }
  source.addEventListener('error', () => {
    if (ended) return;
    // CONNECTING: the browser reconnects by itself, with Last-Event-ID. CLOSED: it gave up (the ticket
    // expired, the API refused): ask for a new ticket and resume from the last event.
    if (source.readyState === EventSource.CLOSED) {
      source = null;
      retryLater('the stream closed');
    } else {
      setConnection('reconnecting…');
    }
  });
}

function retryLater(why, afterMs) {
  const wait = afterMs > 0 ? afterMs : retryMs;
  retryMs = Math.min(retryMs * 2, 30_000);
  setConnection(`${why}; trying again in ${Math.round(wait / 1000)} s`);
  setTimeout(connect, wait);
}

document.addEventListener('DOMContentLoaded', () => {
  el('job-id').textContent = jobId;
  el('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = document.getElementById('token');
    token = input.value.trim().replace(/^Bearer\s+/i, '');
    input.value = '';
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    void connect();
  });
  token = tokenFromFragment();
  if (token) void connect();
  else askForToken(null);
});
