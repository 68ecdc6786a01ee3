//! `GET /`: a one-file status page for people; it polls `GET /status.json`
//! every two seconds (no build step, no external assets, so it works on an
//! isolated management network).
//!
//! The HA section is `status-get`'s `high-availability` list, rendered by
//! [`crate::kea::status`] from the same typed [`crate::ha::RelStatus`]
//! `status-get` and `/metrics` read, so they never disagree about the pair.

use std::sync::Arc;

use axum::{
    Json,
    extract::State,
    response::{Html, IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    ApiState,
    command::dhcp_enabled,
    stats::{packet_stats, pool_counts},
};
use crate::{clock::unix_now, kea};

/// This machine's host name, so a page left open in a browser tab says
/// which server it is.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // on success when the name fits, and we stop at the first NUL anyway.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// What the page shows, as JSON (also handy for scripts).
pub fn snapshot(state: &ApiState) -> Value {
    let ha = state.ha_status().map(|l| kea::status::ha_json(&l));
    let now = unix_now();
    let until = state.core.dhcp_disabled_until();
    let subnets = pool_counts(&state.core.policy(), &state.core.leases(), now);
    let packets = packet_stats(&state.core.stats());
    let enabled = dhcp_enabled(until, now);
    let offers = state.core.offers();
    let xdp = state.xdp.as_ref().map(|x| match x.counters() {
        Ok(c) => json!(
            c.into_iter()
                .map(|(k, v)| (k.to_owned(), json!(v)))
                .collect::<serde_json::Map<_, _>>()
        ),
        Err(e) => json!({ "error": e }),
    });
    // Live: the run-time watch may have moved an interface since start.
    let interfaces = state.xdp.as_ref().map(|x| x.interfaces()).unwrap_or_default();
    let attach_mode =
        if interfaces.is_empty() { state.attach_mode.clone() } else { crate::xdp::summary(&interfaces) };
    let events: Vec<Value> = state
        .events
        .newest_first()
        .into_iter()
        .map(|(t, text)| json!({ "time": kea::time::kea_stamp(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t)), "text": text }))
        .collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "host": host_name(),
        "https": state.tls().as_ref().map(|t| json!({
            "client-certs-required": t.settings.require_client_certs,
        })),
        "uptime": state.started.elapsed().as_secs(),
        "attach-mode": attach_mode,
        "security-warnings": state.security_warnings(),
        "interfaces": interfaces.iter().map(|i| json!({
            "interface": i.interface, "mode": i.mode.label(), "attach-mode": i.mode.to_string(),
            "reason": i.why.as_ref().map(|w| w.code()), "why": i.why.as_ref().map(ToString::to_string),
            "fallbacks": i.fallbacks,
        })).collect::<Vec<_>>(),
        "dhcp-enabled": enabled,
        "dhcp-disabled-until": until.filter(|t| !enabled && *t != u64::MAX),
        "subnets": subnets.iter().map(|p| json!({
            "id": p.subnet_id, "prefix": p.prefix, "total": p.total, "active": p.active,
            "expired": p.expired, "declined": p.declined, "reclaimed": p.reclaimed,
        })).collect::<Vec<_>>(),
        "offers": { "held": offers.held, "unheld": offers.unheld },
        "packets": packets.into_iter().map(|(k, v)| (k.to_owned(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "xdp": xdp,
        "kernel-daemon-only": state.kernel_coverage.as_ref().map(|c| c.get().rows().into_iter().map(|(kind, reason, n)| json!({
            "kind": kind, "reason": reason, "count": n,
        })).collect::<Vec<_>>()),
        "events": events,
        "high-availability": ha,
    })
}

/// `GET /status.json`.
pub async fn json(State(state): State<Arc<ApiState>>) -> Response {
    Json(snapshot(&state)).into_response()
}

/// `GET /`.
pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>xdhcpd</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;max-width:64em}
h1{font-size:1.3em} h2{font-size:1.05em;margin-top:1.4em}
table{border-collapse:collapse} td,th{padding:.2em .7em;text-align:left;border-bottom:1px solid #ddd}
.bar{width:16em;height:.9em;background:#e5e5e5;display:flex}
.bar span{display:block;height:100%} .a{background:#3a7} .e{background:#db3} .d{background:#c44}
.off{color:#fff;background:#c44;padding:.1em .4em} .on{color:#fff;background:#3a7;padding:.1em .4em}
#err{color:#c44}
.rel{border:1px solid #ccc;border-radius:6px;padding:.8em 1em;margin:.6em 0}
.verdict{font-size:1.5em;font-weight:700;padding:.3em .6em;border-radius:4px;color:#fff}
.pair{display:flex;align-items:center;gap:1.2em;margin:.8em 0;flex-wrap:wrap}
.srv{min-width:14em} .who{color:#555;margin-bottom:.3em}
.badge{display:inline-block;font-size:1.6em;font-weight:700;letter-spacing:.03em;padding:.25em .6em;border-radius:4px;color:#fff;text-transform:uppercase}
.link{font-size:1.1em;color:#555;text-align:center}
.green{background:#2e8b57} .amber{background:#d48806} .red{background:#c0392b} .grey{background:#888}
.kv td:first-child{color:#555} .warn{color:#b35c00;font-weight:700}
#ha-none{color:#555;font-size:1.1em}
</style></head><body>
<h1>xdhcpd <span id="host"></span> <small id="ver"></small> <span id="state"></span></h1>
<div>attach mode: <b id="mode"></b> · uptime <span id="up"></span> s · <span id="proto"></span> <span id="err"></span></div>
<div id="ifaces"></div>
<div id="security"></div>
<h2>High availability</h2><div id="ha"></div>
<h2>Subnets</h2>
<table><thead><tr><th>id</th><th>prefix</th><th>pool use</th><th>active</th><th>expired</th><th>declined</th><th>total</th></tr></thead><tbody id="subnets"></tbody></table>
<p><span class="bar" style="display:inline-flex;width:1em"><span class="a" style="width:100%"></span></span> active
<span class="bar" style="display:inline-flex;width:1em"><span class="e" style="width:100%"></span></span> expired
<span class="bar" style="display:inline-flex;width:1em"><span class="d" style="width:100%"></span></span> declined</p>
<h2>Packets</h2><table><tbody id="packets"></tbody></table>
<h2>Offers</h2><table><tbody id="offers"></tbody></table>
<h2>XDP counters</h2><table><tbody id="xdp"></tbody></table>
<h2>Left to the daemon by the kernel</h2><table><tbody id="daemononly"></tbody></table>
<h2>Recent events</h2><table><tbody id="events"></tbody></table>
<script>
const $ = id => document.getElementById(id);
const esc = s => String(s).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
const rows = obj => Object.entries(obj || {}).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join('');
// Kea HA states by how worried a person should be.
const GREEN = ['hot-standby', 'load-balancing', 'passive-backup', 'backup'];
const RED = ['terminated', 'unavailable'];
const RANK = {green: 0, grey: 0, amber: 1, red: 2};
const colour = st => GREEN.includes(st) ? 'green' : RED.includes(st) ? 'red' : st ? 'amber' : 'grey';
const badge = (c, text) => `<span class="badge ${c}">${esc(text)}</span>`;
const num = v => (v === undefined || v === null) ? '–' : v;
const warnNum = v => (typeof v === 'number' && v > 0) ? `<span class="warn">${v}</span>` : esc(num(v));
const secs = v => (v === undefined || v === null) ? 'never' : `${Math.round(v)} s ago`;
// One relationship: returns [worst colour, html].
function relationship(r) {
  const srv = r['ha-servers'] || {}, loc = srv.local || {}, rem = srv.remote;
  const lc = colour(loc.state);
  let rc = 'grey', rtext = 'no partner', rwhy = '';
  if (rem) {
    const lost = rem['in-touch'] === false || rem['communication-interrupted'] === true || rem['last-state'] === 'unavailable';
    rc = lost ? 'red' : colour(rem['last-state']);
    rtext = lost ? 'unreachable' : (rem['last-state'] || 'unknown');
    rwhy = lost && rem['last-state'] && rem['last-state'] !== 'unavailable' ? `last known: ${esc(rem['last-state'])}` : '';
  }
  const worst = RANK[lc] >= RANK[rc] ? lc : rc;
  let verdict = 'Pair healthy';
  if (loc.state === 'terminated') verdict = 'HA terminated on this server';
  else if (rc === 'red') verdict = (loc.state === 'partner-down' ? 'Serving alone: partner ' : 'Partner ') + `${rem['server-name'] || ''} unreachable`;
  else if (loc.state === 'partner-down') verdict = 'Serving alone (partner down)';
  else if (worst !== 'green' && worst !== 'grey') verdict = `Not in normal state: ${loc.state || '?'} / ${rem ? rem['last-state'] : '–'}`;
  else if (!rem) verdict = loc.state ? `${loc.state}` : 'HA state unknown';
  const age = r['last-heartbeat-age'] !== undefined ? r['last-heartbeat-age'] : (rem ? rem.age : null);
  const scopes = a => (a && a.length) ? a.map(esc).join(', ') : 'none';
  const html = `<div class="rel" data-relationship="${esc(loc['server-name'] || '')}">
    <div class="verdict ${worst}">${esc(verdict)}</div>
    <div class="pair">
      <div class="srv"><div class="who">this server · <b>${esc(loc['server-name'] || '?')}</b> · ${esc(loc.role || '')}</div>
        ${badge(lc, loc.state || 'unknown')}<div>serving scopes: ${scopes(loc.scopes)}</div></div>
      <div class="link">⇄<br>heartbeat<br><b class="hb">${secs(age)}</b></div>
      <div class="srv"><div class="who">partner · <b>${esc(rem ? rem['server-name'] || '?' : '–')}</b> · ${esc(rem ? rem.role || '' : '')}</div>
        ${badge(rc, rtext)}<div>${rwhy || (rem ? 'scopes: ' + scopes(rem['last-scopes']) : '')}</div></div>
    </div>
    <table class="kv"><tbody>
      <tr><td>mode</td><td>${esc(r['ha-mode'] || '?')}</td></tr>
      <tr><td>lease updates not yet sent</td><td>${warnNum(r['unsent-update-count'])}</td></tr>
      <tr><td>replication backlog</td><td>${warnNum(r['replication-backlog'])}</td></tr>
      ${rem ? `<tr><td>unacked clients</td><td>${warnNum(rem['unacked-clients'])} (${esc(num(rem['unacked-clients-left']))} more before partner-down)</td></tr>
      <tr><td>connecting clients / analyzed packets</td><td>${esc(num(rem['connecting-clients']))} / ${esc(num(rem['analyzed-packets']))}</td></tr>` : ''}
    </tbody></table></div>`;
  return [worst, html];
}
function renderHA(list) {
  if (!Array.isArray(list) || list.length === 0) return ['grey', '<div id="ha-none">HA: not configured</div>'];
  let worst = 'green', html = '';
  for (const r of list) { const [c, h] = relationship(r); html += h; if (RANK[c] > RANK[worst]) worst = c; }
  return [worst, html];
}
async function tick() {
  try {
    const r = await fetch('status.json', {cache: 'no-store'});
    if (!r.ok) throw new Error('HTTP ' + r.status);
    const s = await r.json();
    $('host').textContent = s.host || '';
    $('ver').textContent = s.version;
    $('mode').textContent = s['attach-mode'];
    $('ifaces').innerHTML = (s.interfaces || []).filter(i => i.why).map(i =>
      `<div class="warn">${esc(i.interface)}: ${esc(i['attach-mode'])} — ${esc(i.why)}</div>`).join('');
    $('security').innerHTML = (s['security-warnings'] || []).map(w => `<div class="warn">${esc(w)}</div>`).join('');
    $('up').textContent = s.uptime;
    $('proto').textContent = s.https ? ('HTTPS' + (s.https['client-certs-required'] ? ', client certificates required' : '')) : 'HTTP';
    $('state').innerHTML = s['dhcp-enabled'] ? '<span class="on">serving</span>' : '<span class="off">DHCP disabled</span>';
    const [haColour, haHtml] = renderHA(s['high-availability']);
    $('ha').innerHTML = haHtml;
    document.title = (haColour === 'red' ? '✖ ' : haColour === 'amber' ? '⚠ ' : '') + 'xdhcpd ' + (s.host || '');
    $('subnets').innerHTML = s.subnets.map(n => {
      const pct = v => n.total ? (100 * v / n.total).toFixed(1) : 0;
      return `<tr class="subnet"><td>${n.id}</td><td>${esc(n.prefix)}</td><td><div class="bar" title="${pct(n.active + n.expired + n.declined)}%">` +
        `<span class="a" style="width:${pct(n.active)}%"></span><span class="e" style="width:${pct(n.expired)}%"></span>` +
        `<span class="d" style="width:${pct(n.declined)}%"></span></div></td><td>${n.active}</td><td>${n.expired}</td>` +
        `<td>${n.declined}</td><td>${n.total}</td></tr>`;
    }).join('');
    $('packets').innerHTML = rows(s.packets);
    $('offers').innerHTML = rows({'held now': s.offers.held, 'sent unheld (hold table full)': s.offers.unheld});
    $('xdp').innerHTML = s.xdp ? rows(s.xdp) : '<tr><td>not attached</td></tr>';
    const only = s['kernel-daemon-only'];
    $('daemononly').innerHTML = !only ? '<tr><td>not attached</td></tr>' : only.length === 0 ? '<tr><td>nothing: every subnet and reservation has a kernel template</td></tr>' :
      only.map(r => `<tr><td>${esc(r.kind)}s (${esc(r.reason)})</td><td>${esc(r.count)}</td></tr>`).join('');
    $('events').innerHTML = s.events.map(e => `<tr><td>${esc(e.time)}</td><td>${esc(e.text)}</td></tr>`).join('') || '<tr><td>none</td></tr>';
    $('err').textContent = '';
    document.body.dataset.rendered = 'yes';
  } catch (e) { $('err').textContent = '(update failed: ' + e.message + ')'; }
}
tick(); setInterval(tick, 2000);
</script></body></html>
"#;
