//! `GET /`: a one-file status page for people; it polls `GET /status.json`
//! every two seconds (no build step, no external assets, so it works on an
//! isolated management network).

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
use crate::server::unix_now;

/// What the page shows, as JSON (also handy for scripts).
pub fn snapshot(state: &ApiState) -> Value {
    let now = unix_now();
    let (subnets, packets, enabled, until) = {
        let st = state.lock();
        let until = st.dhcp_disabled_until;
        (
            pool_counts(&st, now),
            packet_stats(&st.stats),
            dhcp_enabled(until, now),
            until,
        )
    };
    let xdp = state.xdp.as_ref().map(|x| match x.counters() {
        Ok(c) => json!(
            c.into_iter()
                .map(|(k, v)| (k.to_owned(), json!(v)))
                .collect::<serde_json::Map<_, _>>()
        ),
        Err(e) => json!({ "error": e }),
    });
    let events: Vec<Value> = state
        .events
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .rev()
        .map(|(t, text)| json!({ "time": super::time::kea_stamp(std::time::UNIX_EPOCH + std::time::Duration::from_secs(*t)), "text": text }))
        .collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime": state.started.elapsed().as_secs(),
        "attach-mode": state.attach_mode,
        "dhcp-enabled": enabled,
        "dhcp-disabled-until": until.filter(|t| !enabled && *t != u64::MAX),
        "subnets": subnets.iter().map(|p| json!({
            "id": p.subnet_id, "prefix": p.prefix, "total": p.total, "active": p.active,
            "expired": p.expired, "declined": p.declined, "reclaimed": p.reclaimed,
        })).collect::<Vec<_>>(),
        "packets": packets.into_iter().map(|(k, v)| (k.to_owned(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "xdp": xdp,
        "events": events,
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
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;max-width:60em}
h1{font-size:1.3em} h2{font-size:1.05em;margin-top:1.4em}
table{border-collapse:collapse} td,th{padding:.2em .7em;text-align:left;border-bottom:1px solid #ddd}
.bar{width:16em;height:.9em;background:#e5e5e5;display:flex}
.bar span{display:block;height:100%} .a{background:#3a7} .e{background:#db3} .d{background:#c44}
.off{color:#fff;background:#c44;padding:.1em .4em} .on{color:#fff;background:#3a7;padding:.1em .4em}
#err{color:#c44}
</style></head><body>
<h1>xdhcpd <span id="ver"></span> <span id="state"></span></h1>
<div>attach mode: <b id="mode"></b> · uptime <span id="up"></span> s <span id="err"></span></div>
<h2>Subnets</h2>
<table><thead><tr><th>id</th><th>prefix</th><th>pool use</th><th>active</th><th>expired</th><th>declined</th><th>total</th></tr></thead><tbody id="subnets"></tbody></table>
<p><span class="bar" style="display:inline-flex;width:1em"><span class="a" style="width:100%"></span></span> active
<span class="bar" style="display:inline-flex;width:1em"><span class="e" style="width:100%"></span></span> expired
<span class="bar" style="display:inline-flex;width:1em"><span class="d" style="width:100%"></span></span> declined</p>
<h2>Packets</h2><table><tbody id="packets"></tbody></table>
<h2>XDP counters</h2><table><tbody id="xdp"></tbody></table>
<h2>Recent events</h2><table><tbody id="events"></tbody></table>
<script>
const $ = id => document.getElementById(id);
const esc = s => String(s).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
const rows = obj => Object.entries(obj || {}).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join('');
async function tick() {
  try {
    const r = await fetch('status.json', {cache: 'no-store'});
    if (!r.ok) throw new Error('HTTP ' + r.status);
    const s = await r.json();
    $('ver').textContent = s.version;
    $('mode').textContent = s['attach-mode'];
    $('up').textContent = s.uptime;
    $('state').innerHTML = s['dhcp-enabled'] ? '<span class="on">serving</span>' : '<span class="off">DHCP disabled</span>';
    $('subnets').innerHTML = s.subnets.map(n => {
      const pct = v => n.total ? (100 * v / n.total).toFixed(1) : 0;
      return `<tr><td>${n.id}</td><td>${esc(n.prefix)}</td><td><div class="bar" title="${pct(n.active + n.expired + n.declined)}%">` +
        `<span class="a" style="width:${pct(n.active)}%"></span><span class="e" style="width:${pct(n.expired)}%"></span>` +
        `<span class="d" style="width:${pct(n.declined)}%"></span></div></td><td>${n.active}</td><td>${n.expired}</td>` +
        `<td>${n.declined}</td><td>${n.total}</td></tr>`;
    }).join('');
    $('packets').innerHTML = rows(s.packets);
    $('xdp').innerHTML = s.xdp ? rows(s.xdp) : '<tr><td>not attached</td></tr>';
    $('events').innerHTML = s.events.map(e => `<tr><td>${esc(e.time)}</td><td>${esc(e.text)}</td></tr>`).join('') || '<tr><td>none</td></tr>';
    $('err').textContent = '';
  } catch (e) { $('err').textContent = '(update failed: ' + e.message + ')'; }
}
tick(); setInterval(tick, 2000);
</script></body></html>
"#;
