// keiline line dashboard. Reads the JSON API (docs/dashboard-api.md) and
// follows /api/v1/stream (server-sent events). No libraries, no inline
// scripts: the page's content security policy allows only this file.
(function () {
  'use strict';

  const SVG = 'http://www.w3.org/2000/svg';
  const PAINTS = ['white', 'silver', 'black', 'red', 'blue', 'mint'];
  const state = {
    dict: null,          // {en: {...}, ja: {...}}
    lang: document.documentElement.lang || 'en',
    line: null,          // the latest line document
    shift: null,         // the latest shift document
    offset: 0,           // server clock − browser clock, ms
    built: '',           // the station ids the line drawing was built for
    car: null,           // the car shown in the car panel
  };

  // --- text ---------------------------------------------------------------

  function t(key, vars) {
    const d = state.dict || {};
    let s = (d[state.lang] && d[state.lang][key]) || (d.en && d.en[key]) || key;
    if (vars) {
      for (const k of Object.keys(vars)) s = s.split('{' + k + '}').join(vars[k]);
    }
    return s;
  }

  function applyStatic() {
    document.documentElement.lang = state.lang;
    for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    for (const el of document.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
    for (const a of document.querySelectorAll('nav.lang a')) a.classList.toggle('active', a.dataset.lang === state.lang);
    document.title = t('title') + ' · ' + document.body.dataset.plant + ' ' + document.body.dataset.line + ' · keiline';
  }

  function setLang(lang) {
    state.lang = lang;
    document.cookie = 'keiline_lang=' + lang + '; path=/; max-age=31536000; samesite=lax';
    applyStatic();
    state.built = '';
    if (state.line) renderLine(state.line);
    if (state.shift) renderShift(state.shift);
    if (state.car) renderCar(state.car);
  }

  // --- formatting ---------------------------------------------------------

  function pct(x) { return x === null || x === undefined ? '–' : (x * 100).toFixed(1) + '%'; }
  function num(x, d) { return x === null || x === undefined ? '–' : x.toFixed(d); }

  function duration(s) {
    s = Math.max(0, Math.floor(s));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const p2 = (n) => String(n).padStart(2, '0');
    if (h > 0) return h + 'h ' + p2(m) + 'm ' + p2(r) + 's';
    if (m > 0) return m + 'm ' + p2(r) + 's';
    return r + 's';
  }

  function clock(iso) {
    if (!iso) return '–';
    return new Date(iso).toLocaleTimeString(state.lang, { hour12: false });
  }

  function serverNow() { return Date.now() + state.offset; }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const k of Object.keys(attrs || {})) e.setAttribute(k, attrs[k]);
    return e;
  }

  function colourName(c) { return PAINTS.includes(c) ? t('colour.' + c) : c; }

  // carIcon is a small side view of a kei car, painted in its colour.
  function carIcon(colour) {
    const s = svg('svg', { viewBox: '0 0 40 20', class: 'car-icon paint-' + (PAINTS.includes(colour) ? colour : 'none'), 'aria-hidden': 'true' });
    s.appendChild(svg('path', { class: 'body', d: 'M3 14 L3 9 L9 8 L13 3 L30 3 L35 8 L38 9 L38 14 Z' }));
    s.appendChild(svg('path', { class: 'glass', d: 'M14 4.5 L22 4.5 L22 8 L11 8 Z M23.5 4.5 L29.5 4.5 L33 8 L23.5 8 Z' }));
    s.appendChild(svg('circle', { class: 'wheel', cx: '10', cy: '15', r: '3.2' }));
    s.appendChild(svg('circle', { class: 'wheel', cx: '31', cy: '15', r: '3.2' }));
    return s;
  }

  // --- the line -----------------------------------------------------------

  function buildLine(doc) {
    const root = document.getElementById('line');
    root.replaceChildren();
    const zones = [];
    const byZone = {};
    for (const s of doc.stations) {
      if (!byZone[s.zone]) {
        byZone[s.zone] = [];
        zones.push(s.zone);
      }
      byZone[s.zone].push(s);
    }
    for (const z of zones) {
      const offline = byZone[z].every((s) => s.optional);
      const zone = el('div', 'zone zone-' + z + (offline ? ' offline' : ''));
      zone.dataset.zone = z;
      const name = el('div', 'zone-name', t('zone.' + z));
      name.dataset.i18n = 'zone.' + z;
      zone.appendChild(name);
      const track = el('div', 'stations');
      for (const s of byZone[z]) {
        const st = el('div', 'station');
        st.dataset.station = s.id;
        const head = el('div', 'st-head');
        head.appendChild(el('span', 'st-id', s.id));
        head.appendChild(el('span', 'st-state'));
        st.appendChild(head);
        st.appendChild(el('div', 'st-name', s.name));
        const car = el('div', 'st-car');
        st.appendChild(car);
        st.appendChild(el('div', 'st-model'));
        const prog = el('div', 'st-progress');
        prog.appendChild(el('div', 'st-bar'));
        st.appendChild(prog);
        const meta = el('div', 'st-meta');
        meta.appendChild(el('span', 'st-cycle'));
        meta.appendChild(el('span', 'hold-mark', t('on_hold')));
        st.appendChild(meta);
        st.appendChild(el('div', 'st-fault'));
        st.appendChild(el('div', 'st-andon', t('andon')));
        st.appendChild(el('div', 'st-oee'));
        track.appendChild(st);
      }
      zone.appendChild(track);
      root.appendChild(zone);
    }
    const legend = document.getElementById('legend');
    legend.replaceChildren();
    legend.appendChild(el('span', 'legend-title', t('legend')));
    for (const k of ['running', 'blocked', 'starved', 'fault', 'maintenance']) {
      const item = el('span', 'legend-item st-' + k);
      item.appendChild(el('span', 'swatch'));
      item.appendChild(document.createTextNode(t('state.' + k)));
      legend.appendChild(item);
    }
    const andon = el('span', 'legend-item andon-swatch');
    andon.appendChild(el('span', 'swatch'));
    andon.appendChild(document.createTextNode(t('andon')));
    legend.appendChild(andon);
    state.built = doc.stations.map((s) => s.id).join(',');
  }

  function renderLine(doc) {
    state.line = doc;
    state.offset = new Date(doc.now).getTime() - Date.now();
    if (state.built !== doc.stations.map((s) => s.id).join(',')) buildLine(doc);
    const taktS = doc.takt_ms * doc.speed / 1000;
    document.getElementById('takt').textContent = t('takt') + ' ' + num(taktS, 0) + ' s' + (doc.speed !== 1 ? ' (×' + doc.speed + ')' : '');
    document.getElementById('on-line').textContent = doc.cars_on_line + ' ' + t('cars_on_line');
    for (const s of doc.stations) {
      const st = document.querySelector('.station[data-station="' + s.id + '"]');
      if (!st) continue;
      const stateName = s.state || '';
      st.className = 'station st-' + (stateName || 'unknown') + (s.andon ? ' andon' : '') + (s.alarm ? ' alarm' : '') + (s.car ? ' has-car' : '') + (s.car && s.car.hold ? ' hold' : '');
      st.dataset.state = stateName;
      st.dataset.andon = s.andon ? 'true' : 'false';
      st.dataset.vin = s.car ? s.car.vin : '';
      st.querySelector('.st-state').textContent = t('state.' + stateName);
      const car = st.querySelector('.st-car');
      car.replaceChildren();
      const model = st.querySelector('.st-model');
      if (s.car) {
        car.appendChild(carIcon(s.car.colour));
        if (s.car.vin) {
          const a = el('a', 'vin', s.car.vin.slice(-6));
          a.href = '#car/' + s.car.vin;
          a.title = s.car.vin;
          a.dataset.vin = s.car.vin;
          car.appendChild(a);
        } else {
          car.appendChild(el('span', 'vin pending', t('car_unknown')));
        }
        model.textContent = [s.car.model, s.car.variant].filter(Boolean).join(' ') + (s.car.colour ? ' · ' + colourName(s.car.colour) : '');
      } else {
        model.textContent = '';
      }
      const fault = s.state === 'fault' || s.fault_code ? (s.fault_code ? s.fault_code + ' ' : '') + (s.fault_text || '') : '';
      // An agent's alarm (a refused cycle) shows like a fault, after the PLC's own.
      const alarm = s.alarm ? s.alarm.code + ': ' + s.alarm.text : '';
      st.querySelector('.st-fault').textContent = [fault, alarm].filter(Boolean).join(' · ');
      st.dataset.alarm = s.alarm ? s.alarm.code : '';
    }
    tickLine();
    renderAndon(doc.andon || []);
  }

  // tickLine moves the cycle progress bars on between updates.
  function tickLine() {
    const doc = state.line;
    if (!doc) return;
    const now = serverNow();
    const takt = doc.takt_ms;
    for (const s of doc.stations) {
      const st = document.querySelector('.station[data-station="' + s.id + '"]');
      if (!st) continue;
      const bar = st.querySelector('.st-bar');
      const txt = st.querySelector('.st-cycle');
      if (!s.car) {
        bar.style.width = '0%';
        bar.classList.remove('over');
        txt.textContent = '';
        continue;
      }
      if (s.car.done) {
        bar.style.width = '100%';
        bar.classList.remove('over');
        txt.textContent = t('done');
        continue;
      }
      const elapsed = Math.max(0, now - new Date(s.car.since).getTime());
      const share = takt > 0 ? elapsed / takt : 0;
      bar.style.width = Math.min(100, share * 100).toFixed(1) + '%';
      bar.classList.toggle('over', share > 1);
      txt.textContent = num(elapsed * doc.speed / 1000, 0) + ' / ' + num(takt * doc.speed / 1000, 0) + ' s';
    }
  }

  function renderAndon(calls) {
    const ul = document.getElementById('andon-list');
    ul.replaceChildren();
    if (calls.length === 0) {
      ul.appendChild(el('li', 'none', t('none')));
      return;
    }
    for (const c of calls) {
      const li = el('li', 'andon-call st-' + (c.state || 'unknown'));
      li.dataset.station = c.station;
      li.appendChild(el('span', 'andon-station', c.station));
      li.appendChild(el('span', 'andon-name', c.name));
      li.appendChild(el('span', 'andon-state', t('state.' + (c.state || ''))));
      if (c.by) li.appendChild(el('span', 'andon-by', c.by + (c.reason ? ': ' + c.reason : '')));
      const age = el('span', 'age');
      age.dataset.since = c.since;
      li.appendChild(age);
      ul.appendChild(li);
    }
    tickAges();
  }

  function tickAges() {
    const now = serverNow();
    for (const a of document.querySelectorAll('.age[data-since]')) {
      a.textContent = duration((now - new Date(a.dataset.since).getTime()) * ((state.line && state.line.speed) || 1) / 1000);
    }
  }

  // --- the shift ----------------------------------------------------------

  function formula(o, line) {
    const lines = [
      t('oee_formula') + ' = ' + pct(o.a) + ' × ' + pct(o.p) + ' × ' + pct(o.q) + ' = ' + pct(o.oee),
      (line ? t('formula_a_line') : t('formula_a')) + ' = (' + duration(o.planned_s) + ' − ' + duration(o.down_s) + ') / ' + duration(o.planned_s),
      (line ? t('formula_p_line') : t('formula_p')) + ' = ' + o.count + ' × ' + num(state.shift ? state.shift.takt_s : 0, 0) + ' s / ' + duration(o.run_s),
      (line ? t('formula_q_line') : t('formula_q')) + ' = ' + o.good + ' / ' + o.count,
    ];
    return lines.join('\n');
  }

  function setText(id, text) { document.getElementById(id).textContent = text; }

  function renderShift(doc) {
    state.shift = doc;
    const box = document.getElementById('shift');
    box.dataset.asOf = doc.as_of;
    box.dataset.from = doc.from;
    setText('shift-window', clock(doc.from) + '–' + clock(doc.to) + ' · ' + t('as_of') + ' ' + clock(doc.as_of));
    setText('kpi-cars-out', String(doc.cars_out));
    setText('kpi-plan-to-date', String(doc.plan_to_date));
    setText('kpi-plan', String(doc.plan));
    const bar = document.getElementById('kpi-cars-bar');
    bar.style.width = (doc.plan_to_date > 0 ? Math.min(100, 100 * doc.cars_out / doc.plan_to_date) : 0).toFixed(1) + '%';
    bar.classList.toggle('behind', doc.cars_out < doc.plan_to_date);
    setText('kpi-jph', num(doc.jph, 1));
    setText('kpi-target-jph', num(doc.target_jph, 1));
    setText('kpi-fpy', pct(doc.fpy));
    setText('kpi-first-pass', doc.first_pass + ' / ' + doc.cars_out);
    setText('kpi-oee', pct(doc.line.oee));
    document.getElementById('kpi-oee').title = formula(doc.line, true);
    document.getElementById('kpi-oee-box').title = formula(doc.line, true);
    setText('kpi-a', pct(doc.line.a));
    setText('kpi-p', pct(doc.line.p));
    setText('kpi-q', pct(doc.line.q));
    setText('kpi-down', duration(doc.downtime_s));
    setText('kpi-andon-count', String(doc.andon.length));
    setText('kpi-holds', String(doc.open_holds));

    const bars = document.getElementById('oee-stations');
    bars.replaceChildren();
    for (const s of doc.stations) {
      const row = el('div', 'bar-row');
      row.dataset.oeeStation = s.station;
      row.title = formula(s, false);
      row.appendChild(el('span', 'bar-label', s.station));
      const track = el('span', 'bar-track');
      const fill = el('span', 'bar-fill');
      fill.style.width = Math.max(0, Math.min(100, (s.oee || 0) * 100)).toFixed(1) + '%';
      if (s.oee !== null && s.oee < 0.65) fill.classList.add('low');
      track.appendChild(fill);
      row.appendChild(track);
      row.appendChild(el('span', 'bar-value', pct(s.oee)));
      bars.appendChild(row);
      const node = document.querySelector('.station[data-station="' + s.station + '"] .st-oee');
      if (node) {
        node.textContent = 'OEE ' + pct(s.oee);
        node.title = formula(s, false);
      }
    }
    renderPareto(doc.downtime);
    renderHolds(doc.holds);
    renderNext(doc.next);
  }

  function reasonText(d) {
    if (d.state === 'maintenance') return t('down_maintenance');
    return (d.fault_code ? d.fault_code + ' ' : '') + (d.fault_text || t('down_fault'));
  }

  function renderPareto(items) {
    const box = document.getElementById('pareto');
    box.replaceChildren();
    if (!items.length) {
      box.appendChild(el('div', 'none', t('none')));
      return;
    }
    const W = 640, H = 260, L = 48, R = 44, T = 12, B = 92;
    const w = W - L - R, h = H - T - B;
    const maxS = Math.max(...items.map((d) => d.seconds));
    const s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, class: 'pareto-chart', role: 'img' });
    const title = svg('title');
    title.textContent = t('downtime');
    s.appendChild(title);
    s.appendChild(svg('line', { x1: L, y1: T + h, x2: L + w, y2: T + h, class: 'axis' }));
    s.appendChild(svg('line', { x1: L, y1: T, x2: L, y2: T + h, class: 'axis' }));
    s.appendChild(svg('line', { x1: L + w, y1: T, x2: L + w, y2: T + h, class: 'axis' }));
    const y80 = T + h * 0.2;
    s.appendChild(svg('line', { x1: L, y1: y80, x2: L + w, y2: y80, class: 'ref' }));
    const ax = (x, y, text, cls) => {
      const e = svg('text', { x: x, y: y, class: cls });
      e.textContent = text;
      s.appendChild(e);
    };
    ax(L - 4, T + 4, duration(maxS), 'tick end');
    ax(L - 4, T + h, '0', 'tick end');
    ax(L + w + 4, T + 4, '100%', 'tick');
    ax(L + w + 4, y80 + 4, '80%', 'tick');
    const bw = w / items.length;
    const pts = [];
    items.forEach((d, i) => {
      const bh = maxS > 0 ? h * d.seconds / maxS : 0;
      const x = L + i * bw;
      const g = svg('g', { class: 'pareto-bar ' + d.state });
      g.setAttribute('data-station', d.station);
      const tip = svg('title');
      tip.textContent = d.station + ' · ' + reasonText(d) + ' · ' + duration(d.seconds) + ' · ' + d.stops + ' ' + t('stops') + ' · ' + t('cumulative') + ' ' + pct(d.cumulative);
      g.appendChild(tip);
      g.appendChild(svg('rect', { x: x + bw * 0.12, y: T + h - bh, width: bw * 0.76, height: Math.max(bh, 0.5) }));
      const lab = svg('text', { x: x + bw / 2, y: T + h + 12, class: 'bar-station' });
      lab.textContent = d.station;
      g.appendChild(lab);
      const rs = reasonText(d);
      const lab2 = svg('text', { x: 0, y: 0, class: 'bar-reason', transform: 'translate(' + (x + bw / 2) + ',' + (T + h + 22) + ') rotate(35)' });
      lab2.textContent = rs.length > 22 ? rs.slice(0, 21) + '…' : rs;
      g.appendChild(lab2);
      s.appendChild(g);
      pts.push([x + bw / 2, T + h - h * d.cumulative]);
    });
    s.appendChild(svg('polyline', { points: pts.map((p) => p.join(',')).join(' '), class: 'cum' }));
    for (const p of pts) s.appendChild(svg('circle', { cx: p[0], cy: p[1], r: 3, class: 'cum-dot' }));
    box.appendChild(s);
  }

  // The next cars of the build sequence (a line that builds orders).
  function renderNext(next) {
    const box = document.getElementById('next-section');
    if (!next) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    setText('next-summary', t('next_summary', { sequenced: next.sequenced, open: next.open_orders }));
    const tb = document.getElementById('next-list');
    tb.replaceChildren();
    if (!next.cars.length) {
      const tr = el('tr');
      const td = el('td', 'none', t('none'));
      td.colSpan = 4;
      tr.appendChild(td);
      tb.appendChild(tr);
      return;
    }
    for (const c of next.cars) {
      const tr = el('tr');
      tr.dataset.seq = c.seq;
      tr.appendChild(el('td', 'mono', String(c.seq)));
      tr.appendChild(el('td', 'mono', c.vin));
      tr.appendChild(el('td', '', [c.model, c.variant, colourName(c.colour)].filter(Boolean).join(' · ')));
      tr.appendChild(el('td', 'sub', c.downloaded_at ? t('in_plc') : ''));
      tb.appendChild(tr);
    }
  }

  function renderHolds(holds) {
    const tb = document.getElementById('holds-list');
    tb.replaceChildren();
    if (!holds.length) {
      const tr = el('tr');
      const td = el('td', 'none', t('none'));
      td.colSpan = 6;
      tr.appendChild(td);
      tb.appendChild(tr);
      return;
    }
    for (const h of holds) {
      const tr = el('tr');
      tr.dataset.vin = h.vin;
      const v = el('td', 'mono');
      const a = el('a', 'vin', h.vin);
      a.href = '#car/' + h.vin;
      a.dataset.vin = h.vin;
      v.appendChild(a);
      tr.appendChild(v);
      tr.appendChild(el('td', '', [h.model, colourName(h.colour)].filter(Boolean).join(' · ')));
      tr.appendChild(el('td', '', h.station));
      tr.appendChild(el('td', 'kind-' + h.kind, t('hold.' + h.kind)));
      tr.appendChild(el('td', 'reason', h.reason));
      const age = el('td', 'age');
      age.dataset.since = h.opened_at;
      tr.appendChild(age);
      tb.appendChild(tr);
    }
    tickAges();
  }

  // --- a car --------------------------------------------------------------

  async function getJSON(url) {
    const r = await fetch(url, { headers: { Accept: 'application/json' } });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) {
      const e = new Error(body.error || r.statusText);
      e.status = r.status;
      throw e;
    }
    return body;
  }

  function showPanel() {
    const p = document.getElementById('car');
    p.hidden = false;
    p.scrollIntoView({ block: 'nearest' });
  }

  function panelMessage(text) {
    state.car = null;
    document.getElementById('car-vin').textContent = '';
    const body = document.getElementById('car-body');
    body.replaceChildren(el('p', 'message', text));
    showPanel();
  }

  async function search(q) {
    q = q.trim().toUpperCase();
    if (!q) return;
    try {
      const res = await getJSON('/api/v1/cars?q=' + encodeURIComponent(q));
      if (res.cars.length === 1) {
        await openCar(res.cars[0].vin);
      } else if (res.cars.length === 0) {
        panelMessage(t('not_found'));
      } else {
        state.car = null;
        document.getElementById('car-vin').textContent = q;
        const body = document.getElementById('car-body');
        body.replaceChildren(el('p', '', t('pick_car')));
        const ul = el('ul', 'car-list');
        for (const c of res.cars) {
          const li = el('li');
          const a = el('a', 'vin mono', c.vin);
          a.href = '#car/' + c.vin;
          a.dataset.vin = c.vin;
          li.appendChild(a);
          li.appendChild(document.createTextNode(' ' + [c.model, c.variant, colourName(c.colour)].filter(Boolean).join(' · ')));
          ul.appendChild(li);
        }
        body.appendChild(ul);
        showPanel();
      }
    } catch (e) {
      panelMessage(e.status === 400 ? e.message : t('error'));
    }
  }

  async function openCar(vin) {
    try {
      renderCar(await getJSON('/api/v1/cars/' + encodeURIComponent(vin)));
      showPanel();
    } catch (e) {
      panelMessage(e.status === 404 ? t('not_found') : t('error'));
    }
  }

  function stationName(id) {
    const s = state.line && state.line.stations.find((x) => x.id === id);
    return s ? s.name : '';
  }

  function renderCar(c) {
    state.car = c;
    document.getElementById('car-vin').textContent = c.vin;
    const body = document.getElementById('car-body');
    body.replaceChildren();
    body.dataset.vin = c.vin;
    const head = el('div', 'car-head');
    head.appendChild(carIcon(c.colour));
    head.appendChild(el('span', 'car-model', [c.model, c.variant, colourName(c.colour)].filter(Boolean).join(' · ')));
    let where;
    if (c.status === 'shipped') where = t('shipped', { time: clock(c.shipped_at) });
    else if (c.status === 'on_line') where = t(c.done ? 'in_station_done' : 'in_station', { station: c.station + ' ' + stationName(c.station) });
    else where = t('last_seen', { station: c.station + ' ' + stationName(c.station) });
    const w = el('span', 'car-where', t('where') + ': ' + where);
    w.id = 'car-where';
    w.dataset.station = c.station;
    w.dataset.status = c.status;
    head.appendChild(w);
    if (c.open_holds > 0) head.appendChild(el('span', 'hold-mark', t('on_hold') + ' (' + c.open_holds + ')'));
    const trace = el('a', 'trace-link', t('full_trace'));
    trace.href = c.trace;
    trace.id = 'car-trace';
    head.appendChild(trace);
    const birth = el('a', 'trace-link', t('birth_record'));
    birth.href = '/trace/vin/' + encodeURIComponent(c.vin);
    birth.id = 'car-birth';
    head.appendChild(birth);
    body.appendChild(head);

    body.appendChild(el('h3', '', t('route')));
    const table = el('table', 'route');
    const hr = el('tr');
    for (const k of ['station', 'started', 'finished', 'result', 'results']) hr.appendChild(el('th', '', t(k)));
    const thead = el('thead');
    thead.appendChild(hr);
    table.appendChild(thead);
    const tb = el('tbody');
    for (const v of c.route) {
      const tr = el('tr', 'visit ' + (v.result === 'OK' ? 'ok' : 'nok'));
      tr.dataset.station = v.station;
      tr.appendChild(el('td', '', v.station + ' ' + stationName(v.station)));
      tr.appendChild(el('td', 'mono', v.started_at ? clock(v.started_at) : '–'));
      tr.appendChild(el('td', 'mono', clock(v.finished_at)));
      tr.appendChild(el('td', 'result', v.result || '?'));
      const res = el('td', 'results');
      const parts = [];
      if (v.parts) parts.push(v.parts + ' ' + t('parts'));
      if (v.joints) parts.push(v.joints + ' ' + t('joints') + (v.joints_nok ? ' (NOK ' + v.joints_nok + ')' : ''));
      if (v.tests) parts.push(v.tests + ' ' + t('tests') + (v.tests_nok ? ' (NOK ' + v.tests_nok + ')' : ''));
      res.appendChild(el('span', '', parts.join(' · ')));
      for (const p of v.problems || []) res.appendChild(el('div', 'problem', p));
      tr.appendChild(res);
      tb.appendChild(tr);
    }
    table.appendChild(tb);
    body.appendChild(table);

    if (c.holds.length) {
      body.appendChild(el('h3', '', t('holds')));
      const ul = el('ul', 'car-holds');
      for (const h of c.holds) {
        const li = el('li', h.closed_at ? 'closed' : 'open');
        li.textContent = h.station + ' · ' + t('hold.' + h.kind) + ' · ' + h.reason + ' · ' + clock(h.opened_at) +
          (h.closed_at ? ' → ' + t('holds_closed') + ' ' + clock(h.closed_at) : '');
        ul.appendChild(li);
      }
      body.appendChild(ul);
    }
  }

  // --- wiring -------------------------------------------------------------

  function connect() {
    const conn = document.getElementById('conn');
    const es = new EventSource('/api/v1/stream');
    es.addEventListener('line', (e) => renderLine(JSON.parse(e.data)));
    es.addEventListener('shift', (e) => renderShift(JSON.parse(e.data)));
    es.onopen = () => {
      conn.className = 'conn live';
      conn.dataset.i18n = 'live';
      conn.textContent = t('live');
    };
    es.onerror = () => {
      conn.className = 'conn down';
      conn.dataset.i18n = 'reconnecting';
      conn.textContent = t('reconnecting');
    };
  }

  function onHash() {
    const m = location.hash.match(/^#car\/([A-Z0-9]{17})$/);
    if (m) openCar(m[1]);
  }

  async function start() {
    try {
      state.dict = await getJSON('/static/i18n.json');
    } catch (e) {
      state.dict = null;
    }
    if (!state.dict || !state.dict[state.lang]) state.lang = 'en';
    applyStatic();
    for (const a of document.querySelectorAll('nav.lang a')) {
      a.addEventListener('click', (e) => {
        e.preventDefault();
        setLang(a.dataset.lang);
      });
    }
    document.getElementById('search').addEventListener('submit', (e) => {
      e.preventDefault();
      search(document.getElementById('q').value);
    });
    document.getElementById('car-close').addEventListener('click', () => {
      document.getElementById('car').hidden = true;
      state.car = null;
      if (location.hash) history.replaceState(null, '', location.pathname + location.search);
    });
    window.addEventListener('hashchange', onHash);
    try {
      renderLine(await getJSON('/api/v1/line'));
      renderShift(await getJSON('/api/v1/shift'));
    } catch (e) {
      // the stream brings both as soon as it connects
    }
    connect();
    onHash();
    setInterval(() => {
      tickLine();
      tickAges();
      document.getElementById('clock').textContent = new Date(serverNow()).toLocaleTimeString(state.lang, { hour12: false });
    }, 250);
  }

  start();
})();
