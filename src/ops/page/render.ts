import { formatAge } from '../format.js';
import type { DeadGroup, DeadLetter, PageData, SourceLine } from './queries.js';

/**
 * Server-rendered HTML of the ops page. Every figure is in the markup (readable without JavaScript; the browser test
 * reads them by `data-k`); the charts are drawn by uPlot from the series embedded as JSON. Everything interpolated is
 * escaped: reasons, bodies and headers come from the outside world.
 */

export function esc(v: unknown): string {
  return String(v ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** JSON inside a <script> element: `<` escaped so no string can close it. */
const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c');

const ago = (now: Date, d: Date | null | undefined) =>
  d ? `<time datetime="${esc(d.toISOString())}" title="${esc(d.toISOString())}">${esc(formatAge((now.getTime() - d.getTime()) / 1000))} ago</time>` : '<span class="muted">never</span>';
const iso = (d: Date | null | undefined) => (d ? `<time datetime="${esc(d.toISOString())}">${esc(d.toISOString().replace('T', ' ').slice(0, 19))}</time>` : '-');
const num = (n: number, capped = false) => `${n.toLocaleString('en-US')}${capped ? '+' : ''}`;
const pct = (x: number | null) => (x === null ? '<span class="muted">-</span>' : `${(x * 100).toFixed(1)}%`);
const ms = (x: number | null | undefined) => (x === null || x === undefined ? '-' : x < 1000 ? `${Math.round(x)} ms` : `${(x / 1000).toFixed(1)} s`);

const STYLE = `
:root { --fg:#1d2430; --muted:#6b7585; --line:#e3e7ee; --bg:#f6f8fb; --card:#fff; --ok:#1a7f4b; --warn:#b26b00; --bad:#c0392b; --accent:#2f6fdf; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; align-items:baseline; gap:16px; padding:14px 24px; background:#16202e; color:#fff; }
header h1 { margin:0; font-size:18px; } header .muted { color:#aab4c3; }
main { padding:16px 24px 40px; max-width:1500px; }
h2 { font-size:15px; margin:26px 0 8px; }
.tiles { display:grid; grid-template-columns:repeat(auto-fill, minmax(170px, 1fr)); gap:10px; }
.tile { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:10px 14px; }
.tile .v { font-size:24px; font-weight:600; font-variant-numeric:tabular-nums; } .tile .l { color:var(--muted); font-size:12px; }
.charts { display:grid; grid-template-columns:repeat(auto-fill, minmax(440px, 1fr)); gap:10px; }
.chart { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:10px; min-height:250px; }
.chart h3 { margin:0 0 6px; font-size:13px; font-weight:600; }
table { border-collapse:collapse; width:100%; background:var(--card); border:1px solid var(--line); border-radius:8px; }
th, td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:12px; color:var(--muted); font-weight:600; background:#fafbfd; }
td.n { text-align:right; font-variant-numeric:tabular-nums; }
.muted { color:var(--muted); } .ok { color:var(--ok); } .warn { color:var(--warn); } .bad { color:var(--bad); }
code, pre { font:12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
pre { background:#0f1722; color:#e6edf3; padding:12px; border-radius:6px; overflow:auto; max-height:480px; white-space:pre-wrap; word-break:break-all; }
details summary { cursor:pointer; } a { color:var(--accent); }
button { font:inherit; padding:5px 12px; border-radius:6px; border:1px solid var(--accent); background:var(--accent); color:#fff; cursor:pointer; }
button.secondary { background:#fff; color:var(--accent); }
.note { color:var(--muted); font-size:12px; margin:4px 0; }
.bar { display:inline-block; height:8px; border-radius:4px; background:var(--warn); vertical-align:middle; margin-right:6px; }
`;

export function layout(title: string, body: string, scripts = '', refreshSeconds?: number): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
${refreshSeconds ? `<meta http-equiv="refresh" content="${refreshSeconds}">` : ''}
<meta name="referrer" content="same-origin"><title>${esc(title)}</title>
<link rel="stylesheet" href="/assets/uplot.min.css"><style>${STYLE}</style></head>
<body><header><h1>wharf ops</h1><span class="muted">${esc(title)}</span><span class="muted"><a href="/" style="color:#aab4c3">overview</a></span></header>
<main>${body}</main>${scripts}</body></html>`;
}

function tile(key: string, label: string, value: string, cls = ''): string {
  return `<div class="tile"><div class="v ${cls}" data-k="${esc(key)}">${value}</div><div class="l">${esc(label)}</div></div>`;
}

function sourceRow(now: Date, s: SourceLine): string {
  const share = s.catchShare24h;
  const shareCls = share === null ? '' : share > 0.2 ? 'bad' : share > 0.02 ? 'warn' : 'ok';
  const bar = share === null ? '' : `<span class="bar" style="width:${Math.max(2, Math.round(share * 60))}px"></span>`;
  return `<tr data-source="${esc(s.id)}">
<td><strong>${esc(s.name)}</strong><br><code class="muted">${esc(s.id)}</code>${s.enabled ? '' : ' <span class="bad">disabled</span>'}</td>
<td data-k="subscription">${s.subscription === null ? '<span class="muted">not tracked</span>' : `<span class="${s.subscription === 'ok' ? 'ok' : s.subscription === 'not checked yet' ? 'muted' : 'bad'}">${esc(s.subscription)}</span>`}</td>
<td data-k="last-webhook">${ago(now, s.lastWebhookAt)}</td>
<td data-k="last-poll">${ago(now, s.lastPollAt)}</td>
<td class="n" data-k="webhook-24h">${num(s.webhookEvents24h)}</td>
<td class="n" data-k="catches-24h">${num(s.catches24h)}</td>
<td class="n ${shareCls}" data-k="catch-share">${bar}${pct(share)}</td>
<td class="n" data-k="dead">${num(s.deadLetters)}</td>
<td class="n" data-k="rejected-24h">${num(s.rejected24h)}</td></tr>`;
}

function deadGroup(g: DeadGroup, i: number, csrf: string): string {
  const reason = g.reason ?? '(no reason recorded)';
  const recent = g.recent
    .map((r) => `<li><a href="/dead/${r.id}" data-dead-id="${r.id}">#${r.id}</a> ${esc(r.topic ?? '(no topic)')} · <code>${esc(r.sourceId)}</code> · ${iso(r.receivedAt)}</li>`)
    .join('');
  return `<tr data-group="${i}">
<td><details><summary><code>${esc(reason.length > 160 ? `${reason.slice(0, 160)}…` : reason)}</code></summary>
<pre>${esc(reason)}</pre><ul>${recent}</ul>${g.count > g.recent.length ? `<p class="note">newest ${g.recent.length} of ${num(g.count)} shown</p>` : ''}</details></td>
<td class="n" data-k="group-count">${num(g.count)}</td>
<td>${g.topics.map(esc).join(', ')}</td><td>${g.sources.map((s) => `<code>${esc(s)}</code>`).join(', ')}</td>
<td>${iso(g.firstAt)}<br>${iso(g.lastAt)}</td>
<td><form method="post" action="/replay/plan">${hiddenReason(g.reason)}<input type="hidden" name="csrf" value="${esc(csrf)}">
<button class="secondary" type="submit">Replay…</button></form></td></tr>`;
}

export function hiddenReason(reason: string | null): string {
  return reason === null
    ? '<input type="hidden" name="reason_null" value="1">'
    : `<input type="hidden" name="reason" value="${esc(reason)}">`;
}

/** The overview page. */
export function renderOverview(d: PageData, csrf: string, refreshSeconds?: number): string {
  const now = d.at;
  const latest = d.latest;
  const pendingCls = d.inbox.pending === 0 ? 'ok' : (d.inbox.oldestPendingAgeS ?? 0) > 300 ? 'bad' : 'warn';
  const tiles = [
    tile('pending', 'inbox pending', num(d.inbox.pending, d.inbox.pendingCapped), pendingCls),
    tile('oldest-pending', 'oldest pending', d.inbox.oldestPendingAgeS === null ? '-' : esc(formatAge(d.inbox.oldestPendingAgeS))),
    tile('dead-total', 'dead letters', num(d.inbox.dead, d.inbox.deadCapped), d.inbox.dead > 0 ? 'bad' : 'ok'),
    tile('applied-per-min', 'applied / min (last sample)', latest ? num(Math.round(latest.appliedPerMin)) : '-'),
    tile('lag-p50', 'webhook → applied p50', ms(latest?.lagP50Ms)),
    tile('lag-p99', 'webhook → applied p99', ms(latest?.lagP99Ms)),
    tile('workers-alive', 'workers alive', `${d.workers.filter((w) => w.alive).length}/${d.workers.length}`),
  ].join('');

  const noSamples = d.series.length === 0 ? '<p class="note">No samples yet: the worker writes one per minute (task sample_ops_metrics).</p>' : '';
  const charts = `<div class="charts">
<div class="chart"><h3>Inbox depth and oldest pending age (24 h)</h3><div id="chart-depth" data-chart="depth"></div></div>
<div class="chart"><h3>Webhook → applied lag p50 / p99 (24 h)</h3><div id="chart-lag" data-chart="lag"></div></div>
<div class="chart"><h3>Events applied per minute (24 h)</h3><div id="chart-applied" data-chart="applied"></div></div>
</div>${noSamples}`;

  const sources = `<table id="sources"><thead><tr><th>source</th><th>subscription</th><th>last webhook</th><th>last poll</th>
<th>webhook events 24 h</th><th>poll catches 24 h</th><th>catch share 24 h</th><th>dead letters</th><th>rejected 24 h</th></tr></thead>
<tbody>${d.sources.map((s) => sourceRow(now, s)).join('') || '<tr><td colspan="9" class="muted">no sources</td></tr>'}</tbody></table>
<p class="note">Catch share = poll catches / (webhook events + poll catches): the part of the changes only polling brought. Near 0: the webhooks can be trusted; rising: the source's webhook feed is failing and polling covers for it.</p>`;

  const dead = `<table id="dead-groups"><thead><tr><th>reason</th><th>count</th><th>topics</th><th>sources</th><th>first / last received</th><th></th></tr></thead>
<tbody>${d.deadGroups.map((g, i) => deadGroup(g, i, csrf)).join('') || '<tr><td colspan="6" class="muted">no dead letters</td></tr>'}</tbody></table>
${d.deadGroupsTruncated ? '<p class="note">More reasons exist: the 50 largest groups are shown.</p>' : ''}
`;

  const cursors = `<table id="cursors"><thead><tr><th>source</th><th>stream</th><th>cursor</th><th>last run</th><th>last success</th><th>catches</th><th>state</th></tr></thead>
<tbody>${
    d.cursors
      .map(
        (c) => `<tr><td>${esc(c.sourceName)}</td><td>${esc(c.stream)}</td><td>${iso(c.cursorTime)}</td><td>${ago(now, c.lastRunAt)}</td>
<td>${ago(now, c.lastSuccessAt)}</td><td class="n">${num(c.catches)}</td>
<td>${c.lastError ? `<span class="bad">${esc(c.lastError.slice(0, 200))}</span>` : c.inProgress ? 'paging' : '<span class="ok">idle</span>'}</td></tr>`,
      )
      .join('') || '<tr><td colspan="7" class="muted">no poll cursors</td></tr>'
  }</tbody></table>`;

  const runs =
    d.pollRuns === null
      ? '<p class="note" id="poll-runs-missing">Poll runs are not recorded by this schema (no poll_runs table).</p>'
      : `<table id="poll-runs"><thead><tr><th>source</th><th>stream</th><th>started</th><th>duration</th><th>pages</th><th>events</th><th>outcome</th></tr></thead><tbody>${
          d.pollRuns
            .map(
              (r) => `<tr><td><code>${esc(r.source_id)}</code></td><td>${esc(r.stream)}</td><td>${esc(String(r.started_at ?? '').replace('T', ' ').slice(0, 19))}</td>
<td class="n">${esc(ms(typeof r.duration_ms === 'number' ? r.duration_ms : null))}</td><td class="n">${esc(r.pages ?? '')}</td><td class="n">${esc(r.events ?? '')}</td>
<td>${r.error ? `<span class="bad">${esc(r.outcome)}: ${esc(String(r.error).slice(0, 200))}</span>` : esc(r.outcome)}</td></tr>`,
            )
            .join('') || '<tr><td colspan="7" class="muted">no poll runs yet</td></tr>'
        }</tbody></table>`;

  const workers = `<table id="workers"><thead><tr><th>worker</th><th>host / pid</th><th>started</th><th>last heartbeat</th><th>state</th></tr></thead><tbody>${
    d.workers
      .map(
        (w) => `<tr><td><code>${esc(w.workerId)}</code></td><td>${esc(w.host)} / ${esc(w.pid)}</td><td>${iso(w.startedAt)}</td><td>${ago(now, w.lastSeenAt)}</td>
<td>${w.alive ? '<span class="ok">alive</span>' : '<span class="bad">stale</span>'}</td></tr>`,
      )
      .join('') || '<tr><td colspan="5" class="muted">no worker heartbeats</td></tr>'
  }</tbody></table>
<h2>Jobs</h2><table id="jobs"><thead><tr><th>task</th><th>waiting</th><th>running</th><th>failed</th></tr></thead><tbody>${
    d.jobs.map((j) => `<tr><td>${esc(j.task)}</td><td class="n">${j.waiting}</td><td class="n">${j.locked}</td><td class="n">${j.failed}</td></tr>`).join('') ||
    '<tr><td colspan="4" class="muted">no jobs</td></tr>'
  }</tbody></table>
<h2>Released locks</h2><table id="lock-releases"><thead><tr><th>worker</th><th>jobs</th><th>queues</th><th>released</th><th>by</th></tr></thead><tbody>${
    d.lockReleases
      .map((l) => `<tr><td><code>${esc(l.workerId)}</code></td><td class="n">${l.jobs}</td><td class="n">${l.queues}</td><td>${ago(now, l.releasedAt)}</td><td>${esc(l.releasedBy)}</td></tr>`)
      .join('') || '<tr><td colspan="5" class="muted">no lock released</td></tr>'
  }</tbody></table>`;

  const names = new Map(d.sources.map((s) => [s.id, s.name]));
  const reconcile = `<table id="reconcile"><thead><tr><th>source</th><th>stream</th><th>newest reconciled (window end)</th><th>windows short</th><th>short windows (provider / wharf)</th></tr></thead><tbody>${
    d.reconcile
      .map(
        (r) => `<tr data-reconcile="${esc(`${r.sourceId}:${r.stream}`)}"><td>${esc(names.get(r.sourceId) ?? r.sourceId)}<br><code class="muted">${esc(r.sourceId)}</code></td><td>${esc(r.stream)}</td>
<td data-k="reconcile-newest">${r.newestReconciled ? `${iso(r.newestReconciled)} (${ago(now, r.newestReconciled)})` : '<span class="bad">none yet</span>'}</td>
<td class="n ${r.short.length > 0 ? 'bad' : 'ok'}" data-k="reconcile-short">${num(r.short.length)}</td>
<td data-k="reconcile-short-windows">${
          r.short.map((w) => `<span data-window="${esc(w.windowStart.toISOString())}">${esc(w.windowStart.toISOString().slice(0, 10))} (${w.providerCount ?? '?'} / ${w.wharfCount})</span>`).join('<br>') ||
          '<span class="muted">-</span>'
        }</td></tr>`,
      )
      .join('') || '<tr><td colspan="5" class="muted">no window reconciled yet (task reconcile_windows, hourly)</td></tr>'
  }</tbody></table>
<p class="note">Each closed UTC day of the last RECONCILE_DAYS: the provider's total-count of orders updated that day against the orders wharf holds with every shipment listed on them. A short window is re-read and its missing orders re-sent through the inbox; it stays listed until a later run counts it equal.</p>`;

  const body = `<div class="tiles">${tiles}</div>
<h2>Last 24 hours</h2>${charts}
<h2>Sources</h2>${sources}
<h2>Dead letters by reason</h2>${dead}
<h2>Poll cursors</h2>${cursors}
<h2>Reconciliation with the provider's counts</h2>${reconcile}
<h2>Recent poll runs</h2>${runs}
<h2>Workers</h2>${workers}
<p class="note">Read at ${esc(now.toISOString())}${refreshSeconds ? `, reloading every ${refreshSeconds} s` : ' (<a href="/?refresh=60">reload every minute</a>)'}. Series: one sample a minute by the worker (ops_samples), kept OPS_SAMPLE_RETENTION_DAYS.</p>`;
  const series = {
    at: d.series.map((p) => p.at / 1000),
    pending: d.series.map((p) => p.pending),
    oldest: d.series.map((p) => p.oldestPendingAgeS),
    p50: d.series.map((p) => p.lagP50Ms),
    p99: d.series.map((p) => p.lagP99Ms),
    applied: d.series.map((p) => p.appliedPerMin),
    from: (now.getTime() - 24 * 3600 * 1000) / 1000,
    to: now.getTime() / 1000,
  };
  const scripts = `<script type="application/json" id="series">${scriptJson(series)}</script>
<script src="/assets/uplot.iife.min.js"></script><script src="/assets/page.js"></script>`;
  return layout(`${d.inbox.pending} pending · ${d.inbox.dead} dead`, body, scripts, refreshSeconds);
}

/** One dead (or ignored) inbox row: headers, raw body, error. */
export function renderDeadLetter(e: DeadLetter): string {
  let pretty: string | undefined;
  try {
    pretty = JSON.stringify(JSON.parse(e.body), null, 2);
  } catch {
    // Not JSON: only the raw body is shown.
  }
  const rows: [string, string][] = [
    ['inbox id', String(e.id)],
    ['source', e.sourceId],
    ['event id', e.eventId],
    ['topic', e.topic ?? '(none)'],
    ['status', e.status],
    ['via', e.via],
    ['attempts', String(e.attempts)],
    ['received', e.receivedAt.toISOString()],
    ['processed', e.processedAt?.toISOString() ?? '-'],
  ];
  const html = `<table id="dead-letter"><tbody>${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td data-k="${esc(k)}">${esc(v)}</td></tr>`).join('')}</tbody></table>
<h2>Error</h2><pre id="error">${esc(e.lastError ?? '(none recorded)')}</pre>
<h2>Headers</h2><pre id="headers">${esc(JSON.stringify(e.headers ?? {}, null, 2))}</pre>
<h2>Raw body <span class="muted">(exactly as stored, ${e.body.length.toLocaleString('en-US')} characters)</span></h2><pre id="body">${esc(e.body)}</pre>
${pretty === undefined || pretty === e.body ? '' : `<details><summary>pretty-printed</summary><pre id="body-pretty">${esc(pretty)}</pre></details>`}`;
  return layout(`dead letter #${e.id}`, html);
}

/** The confirmation step: what a replay would do, with the button that does it. */
export function renderReplayPlan(p: {
  reason: string | null;
  byTopic: { topic: string | null; count: number }[];
  csrf: string;
  /** The total of an earlier plan that no longer holds. */
  changedFrom?: number;
}): string {
  const total = p.byTopic.reduce((n, t) => n + t.count, 0);
  const changed =
    p.changedFrom === undefined
      ? ''
      : `<p class="warn" id="plan-changed">The group changed since the plan you confirmed (${num(p.changedFrom)} then, ${num(total)} now): nothing was replayed. Confirm again.</p>`;
  const html = `<h2>Replay a dead-letter group</h2>${changed}
<p>Reason: <code>${esc(p.reason ?? '(no reason recorded)')}</code></p>
<p id="plan">This sets <strong data-k="plan-total">${num(total)}</strong> dead event(s) back to pending (via = replay) and wakes the drain; each is applied again from its raw body with today's code. Events that fail again go back to the dead letters.</p>
<table><thead><tr><th>topic</th><th>events</th></tr></thead><tbody>${p.byTopic.map((t) => `<tr><td>${esc(t.topic ?? '(none)')}</td><td class="n">${num(t.count)}</td></tr>`).join('')}</tbody></table>
${
  total === 0
    ? '<p class="muted">Nothing to replay.</p>'
    : `<form method="post" action="/replay" style="margin-top:14px">${hiddenReason(p.reason)}<input type="hidden" name="csrf" value="${esc(p.csrf)}">
<input type="hidden" name="expected" value="${total}"><button type="submit" id="confirm">Replay ${num(total)} event(s)</button> <a href="/">cancel</a></form>`
}`;
  return layout('replay: confirm', html);
}

export function renderReplayDone(p: { reason: string | null; requeued: number; outcome: Record<string, number> }): string {
  const html = `<h2>Replay started</h2>
<p id="done">Requeued <strong data-k="requeued">${num(p.requeued)}</strong> event(s) with reason <code>${esc(p.reason ?? '(no reason recorded)')}</code>.</p>
<p>Now: ${Object.entries(p.outcome).map(([k, v]) => `${esc(k)} ${num(v)}`).join(', ') || '-'}. The drain applies them in the background; <a href="/">back to the overview</a>.</p>`;
  return layout('replay: started', html);
}

export function renderMessage(title: string, text: string): string {
  return layout(title, `<h2>${esc(title)}</h2><p>${esc(text)}</p><p><a href="/">back to the overview</a></p>`);
}
