// A foreign PLC for keiline's tests: an OPC UA server that looks like the
// OPC UA server of a Siemens S7-1500 running a typical integrator's wheel-nut
// stations, made with node-opcua. keiline did not shape it: the tags are
// the integrator's (FOREIGN.md is their data sheet), not keiline's logical
// tags (docs/plc-tags.md), so the agent reaches it only through its tag map.
//
// What makes it S7-like:
//   - namespace 3 is http://www.siemens.com/simatic-s7-opcua (1 is the
//     application URI, 2 the DI companion namespace), node ids are S7
//     symbols: ns=3;s="DB100"."CycleCtr", ns=3;s="DB101"."Nut"[3]."Nm";
//   - the tree is Objects > PLC_1 > DataBlocksGlobal > DB100, DB101, … with
//     an object per struct array and per element (Nut > Nut[1] > Nm, Result),
//     beside DataBlocksInstance, Inputs, Outputs, Memory and unrelated DBs;
//   - S7 types: Bool, Int (Int16), DInt (Int32), Real (Float), String; an
//     Array[1..4] of Int is one node whose OPC UA index range starts at 0;
//   - a write must carry exactly the tag's type (AckCtr only as Int32, else
//     BadTypeMismatch) and no status or timestamps (BadWriteNotSupported);
//   - OperationLimits.MaxNodesPerRead is 10 (a Read of more nodes fails with
//     BadTooManyOperations);
//   - the PLC program runs in a scan: an acknowledgement written to AckCtr
//     is seen at the next scan (--scan-ms), not during the write.
//
// The plant: --stations "FR:100:both,NR:200:body" is a list of
// name:DB:identity. A station's handshake DB is DB<DB>, its result DB
// DB<DB+1>; identity is vin (a String VIN), body (a DInt body number) or
// both. The same cars pass the stations in list order: a car finished at
// one station is at the next one from the next cycle on. Every --cycle-ms
// each station finishes the car it holds (unless paused, faulted, blocked
// or starved) and passes it on, once the next station has taken its last
// car (else it is blocked, State 2, FaultNo 0); the result is buffered (at
// most --max-unacked; with that many waiting the station is blocked, State
// 2, FaultNo 900) and shown when no earlier one waits: the result DB and identity first, then CycleCtr, then
// Ready. When AckCtr equals CycleCtr, the next scan shows the next buffered
// result or clears Ready. Everything a result holds is deterministic from
// --seed and the car and station; counters start at a seeded value.
//
// Usage:
//   node foreign.js [--stations FR:100:both,NR:200:body] [--seed 1]
//     [--port 0] [--pki DIR] [--cycle-ms 1000] [--scan-ms 10] [--cycles 0]
//     [--max-unacked 3] [--max-nodes-per-read 10] [--truth FILE]
//     [--counter-start N] [--first-body 4100001] [--life-start N]
//     [--life-ms 1000] [--nok-rate 0.08] [--paused] [--secure-only]
//
// Security None and Basic256Sha256 Sign and SignAndEncrypt (None dropped
// with --secure-only), anonymous users; any client certificate is accepted.
//
// Stdout carries JSON lines, each starting with {"event": (node-opcua's own
// warnings go there too): ready, cycle, shown, acked, state, ack-held,
// ack-refused, ack-dropped, fixed, done, error — FOREIGN.md lists their fields.
// Stdin takes JSON lines, commands (FOREIGN.md): pause, resume, bad-quality,
// bad-identity, fix-identity, ack-hang, ack-refuse, ack-normal, fault,
// maintenance. With --truth FILE, one JSON line per result made, in
// engineering units, is appended to FILE before its cycle event is printed.
// It stops on SIGTERM or SIGINT or when its stdin closes.
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const readline = require("readline");
const {
  OPCUAServer,
  OPCUACertificateManager,
  DataValue,
  Variant,
  VariantArrayType,
  DataType,
  AttributeIds,
  StatusCodes,
  SecurityPolicy,
  MessageSecurityMode,
} = require("node-opcua");

const S7_NAMESPACE = "http://www.siemens.com/simatic-s7-opcua";
const DI_NAMESPACE = "http://opcfoundation.org/UA/DI/";
const APPLICATION_URI = "urn:SIMATIC.S7-1500.OPC-UA.Application:PLC_1";

const FAULT_UNACKED = 900; // FaultNo while blocked by unacknowledged results
const STATE = { idle: 0, running: 1, blocked: 2, starved: 3, fault: 4, maintenance: 5 };

// S7 elementary types and their OPC UA data types.
const S7 = {
  Bool: DataType.Boolean, Int: DataType.Int16, DInt: DataType.Int32, Real: DataType.Float,
  LReal: DataType.Double, Word: DataType.UInt16, DWord: DataType.UInt32, String: DataType.String,
};

// The wheel-nut joint: 4 nuts, nominal 108 N·m ±10 %, angle window 30–60°.
const NUTS = 4;
const TORQUE_NOMINAL_CNM = 10800; // 0.01 N·m
const TORQUE_LOW_CNM = 9720;
const TORQUE_HIGH_CNM = 11880;
const ANGLE_LOW_DDEG = 300; // 0.1°
const ANGLE_HIGH_DDEG = 600;
const CARS_PER_NUT_LOT = 25;

const MODELS = [
  { code: 1, name: "KV", vds: "KV2NB", share: 0.30 },
  { code: 2, name: "KW", vds: "KW1NA", share: 0.35 },
  { code: 3, name: "KT", vds: "KT4WD", share: 0.15 },
  { code: 4, name: "KE", vds: "KE1EV", share: 0.20 },
];

function parseArgs(argv) {
  const o = {
    stations: "FR:100:both,NR:200:body", seed: 1, port: 0, pki: "", cycleMs: 1000, scanMs: 10,
    cycles: 0, maxUnacked: 3, maxNodesPerRead: 10, truth: "", counterStart: null, firstBody: 4100001,
    lifeStart: null, lifeMs: 1000, nokRate: 0.08, paused: false, secureOnly: false,
  };
  const num = (a, v, min, max) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${a} ${v}: want a number in ${min}..${max}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case "--stations": o.stations = next(); break;
      case "--seed": o.seed = num(a, next(), 0, 2 ** 32 - 1); break;
      case "--port": o.port = num(a, next(), 0, 65535); break;
      case "--pki": o.pki = next(); break;
      case "--cycle-ms": o.cycleMs = num(a, next(), 10, 3600000); break;
      case "--scan-ms": o.scanMs = num(a, next(), 1, 1000); break;
      case "--cycles": o.cycles = num(a, next(), 0, 1e6); break;
      case "--max-unacked": o.maxUnacked = num(a, next(), 1, 1000); break;
      case "--max-nodes-per-read": o.maxNodesPerRead = num(a, next(), 1, 100000); break;
      case "--truth": o.truth = next(); break;
      case "--counter-start": o.counterStart = num(a, next(), 1, 2 ** 31 - 1e6); break;
      case "--first-body": o.firstBody = num(a, next(), 1, 2 ** 31 - 1e6); break;
      case "--life-start": o.lifeStart = num(a, next(), 0, 32767); break;
      case "--life-ms": o.lifeMs = num(a, next(), 10, 60000); break;
      case "--nok-rate": o.nokRate = num(a, next(), 0, 1); break;
      case "--paused": o.paused = true; break;
      case "--secure-only": o.secureOnly = true; break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  o.stations = parseStations(o.stations);
  return o;
}

// parseStations reads name:DB:identity,… and checks that names and DB
// numbers do not clash.
function parseStations(s) {
  const out = [];
  const dbs = new Set();
  for (const item of s.split(",").filter(Boolean)) {
    const [name, db, identity, ...rest] = item.split(":");
    const base = Number(db);
    if (rest.length || !/^[A-Za-z][A-Za-z0-9_]{0,15}$/.test(name || "")) throw new Error(`--stations ${item}: want name:DB:identity, name a letter then letters, digits or _`);
    if (!Number.isInteger(base) || base < 1 || base > 59999) throw new Error(`--stations ${item}: DB number ${db}: want 1..59999`);
    if (!["vin", "body", "both"].includes(identity)) throw new Error(`--stations ${item}: identity ${identity}: want vin, body or both`);
    if (out.some((st) => st.name === name)) throw new Error(`--stations: station ${name} twice`);
    if (dbs.has(base) || dbs.has(base + 1)) throw new Error(`--stations ${item}: DB${base} or DB${base + 1} already used`);
    dbs.add(base).add(base + 1);
    out.push({ name, base, identity });
  }
  if (out.length === 0) throw new Error("--stations: no station");
  return out;
}

// A seeded pseudo-random source: rand(k1, k2, …)() returns numbers in [0, 1)
// that depend only on the keys (FNV-1a over the keys, then mulberry32).
function rand(...keys) {
  let h = 0x811c9dc5;
  for (const k of keys) {
    h = Math.imul(h ^ (k >>> 0), 0x01000193);
    h ^= h >>> 13;
  }
  let a = h >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const randInt = (r, lo, hi) => lo + Math.floor(r() * (hi - lo + 1)); // lo..hi

// VIN check digit of 49 CFR 565.15: transliterate (table IV), weigh by
// position (table V), sum modulo 11, 10 is written X.
const VIN_VALUE = (() => {
  const t = {};
  for (let c = 0; c <= 9; c++) t[String(c)] = c;
  const letters = "ABCDEFGH JKLMN P R STUVWXYZ";
  const values = [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 3, 4, 5, 0, 7, 0, 9, 0, 2, 3, 4, 5, 6, 7, 8, 9];
  for (let i = 0; i < letters.length; i++) if (letters[i] !== " ") t[letters[i]] = values[i];
  return t;
})();
const VIN_WEIGHTS = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
const YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789";

function vinCheckDigit(v) {
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += VIN_VALUE[v[i]] * VIN_WEIGHTS[i];
  const r = sum % 11;
  return r === 10 ? "X" : String(r);
}

function makeVIN(wmi, vds, year, plant, serial) {
  const v = wmi + vds + "0" + year + plant + String(serial).padStart(6, "0");
  return v.slice(0, 8) + vinCheckDigit(v) + v.slice(9);
}

// makeCar returns car k (1, 2, …) of the run: the same at every station.
function makeCar(o, k) {
  const r = rand(o.seed, 0xca5, k);
  let x = r();
  let model = MODELS[MODELS.length - 1];
  for (const m of MODELS) {
    if (x < m.share) { model = m; break; }
    x -= m.share;
  }
  const run = rand(o.seed, 0x71a);
  const year = YEAR_CODES[randInt(run, 0, YEAR_CODES.length - 1)];
  const serial = (randInt(run, 10000, 899999) + k) % 1000000;
  return { k, model, bodyNo: o.firstBody + k - 1, vin: makeVIN("7KL", model.vds, year, "U", serial) };
}

// corruptVIN changes one serial digit, so the check digit no longer fits
// (every serial weight is prime to 11).
function corruptVIN(v) {
  const d = (Number(v[16]) + 1) % 10;
  return v.slice(0, 16) + String(d);
}

// makeResult returns station st's result for car (raw PLC values) and its
// truth in engineering units.
function makeResult(o, st, car, counter) {
  const r = rand(o.seed, st.index + 1, car.k);
  const nokNut = r() < o.nokRate ? randInt(r, 1, NUTS) : 0;
  const nokAngle = r() < 0.3;
  const nuts = [];
  for (let i = 1; i <= NUTS; i++) {
    let cnm = TORQUE_NOMINAL_CNM + randInt(r, -450, 450);
    let ddeg = randInt(r, 340, 560);
    if (i === nokNut && nokAngle) ddeg = r() < 0.5 ? randInt(r, 200, 290) : randInt(r, 610, 700);
    else if (i === nokNut) cnm = r() < 0.5 ? randInt(r, 8800, 9700) : randInt(r, 11900, 12600);
    const ok = cnm >= TORQUE_LOW_CNM && cnm <= TORQUE_HIGH_CNM && ddeg >= ANGLE_LOW_DDEG && ddeg <= ANGLE_HIGH_DDEG;
    nuts.push({ cnm, ddeg, ok });
  }
  const ok = nuts.every((n) => n.ok);
  const lot = st.lotBase + Math.floor((car.k - 1) / CARS_PER_NUT_LOT);
  const clampDkN = randInt(r, 180, 240); // 0.1 kN
  return {
    counter, car, ok,
    nuts,
    toolId: st.toolId,
    nutLot: `NL-${lot}`,
    clampKN: clampDkN / 10,
    identity: { BodyNo: car.bodyNo, VIN: car.vin }, // what the PLC shows
    bad: new Map(), // node key → status name, while this result is shown
  };
}

function truthOf(st, res) {
  const t = {
    station: st.name, counter: res.counter, car: res.car.k, identity: st.identity,
  };
  if (st.identity !== "vin") t.body_no = res.car.bodyNo;
  if (st.identity !== "body") t.vin = res.car.vin;
  Object.assign(t, {
    model_code: res.car.model.code, model: res.car.model.name,
    verdict: res.ok ? 1 : 2, ok: res.ok,
    nuts: res.nuts.map((n, i) => ({ nut: i + 1, torque_nm: n.cnm / 100, angle_deg: n.ddeg / 10, ok: n.ok })),
    tool_id: res.toolId, nut_lot: res.nutLot, clamp_force_kn: res.clampKN,
    bad: [...res.bad].map(([node, status]) => ({ node: "ns=3;s=" + node, status })),
    made_at: new Date().toISOString(),
  });
  const shown = {};
  if (st.hasBody && res.identity.BodyNo !== res.car.bodyNo) shown.BodyNo = res.identity.BodyNo;
  if (st.hasVIN && res.identity.VIN !== res.car.vin) shown.VIN = res.identity.VIN;
  if (Object.keys(shown).length) t.bad_identity = shown;
  return t;
}

function emit(ev) {
  process.stdout.write(JSON.stringify(ev) + "\n");
}

// key returns the S7 symbol of a DB member: key(100, "CycleCtr") is
// "DB100"."CycleCtr".
const key = (db, ...members) => `"DB${db}"` + members.map((m) => (typeof m === "number" ? `[${m}]` : `."${m}"`)).join("");

// Station is one station's PLC program and its data blocks.
class Station {
  constructor(o, index, spec, upstream) {
    this.o = o;
    this.index = index;
    this.name = spec.name;
    this.db = spec.base;
    this.resultDb = spec.base + 1;
    this.identity = spec.identity;
    this.hasBody = spec.identity !== "vin";
    this.hasVIN = spec.identity !== "body";
    this.upstream = upstream;
    this.downstream = null;

    const r = rand(o.seed, 0x57a, index);
    this.toolId = `${spec.name}-SP4 #${randInt(r, 1000, 9999)}`;
    this.lotBase = randInt(r, 10000, 89999);
    const start = o.counterStart != null ? o.counterStart : randInt(r, 1, 90000);
    this.nextCounter = start;

    this.values = new Map(); // node key → value the node shows
    this.types = new Map(); // node key → [S7 type, array length]
    this.inbound = []; // cars at the station, the first one being worked on
    this.generated = 0; // cars made at the first station
    this.queue = []; // results waiting; the first is shown while Ready
    this.displayed = null; // the result whose values are on the nodes
    this.paused = o.paused;
    this.fault = 0;
    this.maintenance = false;
    this.heldByDownstream = false; // its car cannot leave: the next station still holds one
    this.ackMode = "normal";
    this.hung = []; // callbacks of AckCtr writes held by ack-hang
    this.pendingBad = []; // {node, status, results} for the next results
    this.pendingIdentity = []; // {fields, vin} for the next results, one each

    this.k = (m, ...rest) => key(this.db, m, ...rest);
    this.rk = (m, ...rest) => key(this.resultDb, m, ...rest);
    const life = o.lifeStart != null ? o.lifeStart : randInt(r, 0, 32767);
    const init = [
      [this.k("Ready"), "Bool", false], [this.k("CycleCtr"), "DInt", start - 1],
      [this.k("AckCtr"), "DInt", start - 1], [this.k("LifeCtr"), "Int", life],
      [this.k("State"), "Int", STATE.idle], [this.k("FaultNo"), "Int", 0],
      [this.k("BodyNoPresent"), "DInt", 0],
    ];
    if (this.hasBody) init.push([this.k("BodyNo"), "DInt", 0]);
    if (this.hasVIN) init.push([this.k("VIN"), "String", ""]);
    init.push([this.k("ModelCode"), "Int", 0], [this.k("Verdict"), "Int", 0],
      [this.k("Spare1"), "Int", 0], [this.k("Spare2"), "DInt", 0]);
    for (let i = 1; i <= NUTS; i++) init.push([this.rk("Nut", i, "Nm"), "DInt", 0], [this.rk("Nut", i, "Result"), "Int", 0]);
    init.push([this.rk("Angle"), "Int", new Int16Array(NUTS), NUTS], [this.rk("ToolId"), "String", ""],
      [this.rk("NutLot"), "String", ""], [this.rk("ClampForce"), "Real", 0]);
    for (const [k, type, v, len] of init) {
      this.values.set(k, v);
      this.types.set(k, [type, len || 0]);
    }
    this.refill();
  }

  // refill puts the next car into the first station (the line feeds it).
  refill() {
    if (this.upstream || this.inbound.length) return;
    if (this.o.cycles > 0 && this.generated >= this.o.cycles) return;
    this.inbound.push(makeCar(this.o, ++this.generated));
  }

  // exhausted reports whether no car will ever come to this station again.
  exhausted() {
    if (this.inbound.length) return false;
    if (!this.upstream) return this.o.cycles > 0 && this.generated >= this.o.cycles;
    return this.upstream.exhausted();
  }

  // finishCycle ends the cycle of the car at the station, if it may.
  finishCycle() {
    if (this.paused || this.fault || this.maintenance || this.queue.length >= this.o.maxUnacked) return;
    if (!this.inbound.length) return;
    // The car can leave only when the next station has taken its last one.
    this.heldByDownstream = Boolean(this.downstream && this.downstream.inbound.length);
    if (this.heldByDownstream) return;
    const car = this.inbound.shift();
    const res = makeResult(this.o, this, car, this.nextCounter++);
    this.inject(res);
    if (this.o.truth) fs.appendFileSync(this.o.truth, JSON.stringify(truthOf(this, res)) + "\n");
    const ev = { event: "cycle", station: this.name, counter: res.counter, car: car.k, model_code: car.model.code, verdict: res.ok ? 1 : 2 };
    if (this.hasBody) ev.body_no = car.bodyNo;
    if (this.hasVIN) ev.vin = car.vin;
    if (res.bad.size) ev.bad = [...res.bad.keys()];
    emit(ev);
    this.queue.push(res);
    if (this.downstream) this.downstream.inbound.push(car);
    this.refill();
    if (this.queue.length === 1) this.show();
  }

  // inject applies pending bad-quality and bad-identity commands to res.
  inject(res) {
    for (const p of this.pendingBad) {
      res.bad.set(p.node, p.status);
      p.results--;
    }
    this.pendingBad = this.pendingBad.filter((p) => p.results > 0);
    const bad = this.pendingIdentity.shift();
    if (!bad) return;
    if (bad.fields.includes("BodyNo")) res.identity.BodyNo = 0;
    if (bad.fields.includes("VIN")) res.identity.VIN = bad.vin != null ? bad.vin : corruptVIN(res.car.vin);
  }

  // show puts the first waiting result on the nodes: the result DB and the
  // identity first, CycleCtr and Ready last; with none waiting it clears
  // Ready and leaves the last values in the DBs, as a PLC does.
  show() {
    const res = this.queue[0];
    if (!res) {
      this.values.set(this.k("Ready"), false);
      return;
    }
    this.displayed = res;
    res.nuts.forEach((n, i) => {
      this.values.set(this.rk("Nut", i + 1, "Nm"), n.cnm);
      this.values.set(this.rk("Nut", i + 1, "Result"), n.ok ? 1 : 2);
    });
    this.values.set(this.rk("Angle"), Int16Array.from(res.nuts.map((n) => n.ddeg)));
    this.values.set(this.rk("ToolId"), res.toolId);
    this.values.set(this.rk("NutLot"), res.nutLot);
    this.values.set(this.rk("ClampForce"), res.clampKN);
    this.showIdentity(res);
    this.values.set(this.k("ModelCode"), res.car.model.code);
    this.values.set(this.k("Verdict"), res.ok ? 1 : 2);
    this.values.set(this.k("CycleCtr"), res.counter);
    this.values.set(this.k("Ready"), true);
    emit({ event: "shown", station: this.name, counter: res.counter });
  }

  showIdentity(res) {
    if (this.hasBody) this.values.set(this.k("BodyNo"), res.identity.BodyNo);
    if (this.hasVIN) this.values.set(this.k("VIN"), res.identity.VIN);
  }

  // scan is one PLC scan: track the car present, take an acknowledgement,
  // update State and FaultNo.
  scan() {
    this.values.set(this.k("BodyNoPresent"), this.inbound.length ? this.inbound[0].bodyNo : 0);
    const head = this.queue[0];
    if (head && this.values.get(this.k("AckCtr")) === head.counter) {
      this.queue.shift();
      emit({ event: "acked", station: this.name, counter: head.counter });
      this.show();
    }
    let state = STATE.running;
    let faultNo = 0;
    if (this.fault) [state, faultNo] = [STATE.fault, this.fault];
    else if (this.maintenance) state = STATE.maintenance;
    else if (this.queue.length >= this.o.maxUnacked) [state, faultNo] = [STATE.blocked, FAULT_UNACKED];
    else if (this.paused) state = STATE.idle;
    else if (this.heldByDownstream) state = STATE.blocked;
    else if (!this.inbound.length) state = this.exhausted() ? STATE.idle : STATE.starved;
    if (state !== this.values.get(this.k("State")) || faultNo !== this.values.get(this.k("FaultNo"))) {
      this.values.set(this.k("State"), state);
      this.values.set(this.k("FaultNo"), faultNo);
      emit({ event: "state", station: this.name, state, fault_no: faultNo });
    }
  }

  tickLife() {
    const k = this.k("LifeCtr");
    this.values.set(k, (this.values.get(k) + 1) & 0x7fff); // 32767 → 0
  }

  // status returns the injected status of node k while the result it was
  // injected into is on the nodes, or undefined.
  status(k) {
    return this.displayed ? this.displayed.bad.get(k) : undefined;
  }

  // writeAck is the OPC UA write of AckCtr.
  writeAck(dataValue, callback) {
    const v = dataValue.value;
    if (!v || v.dataType !== DataType.Int32 || v.arrayType !== VariantArrayType.Scalar) {
      callback(null, StatusCodes.BadTypeMismatch);
      return;
    }
    if (this.ackMode === "hang") {
      this.hung.push(callback);
      emit({ event: "ack-held", station: this.name, value: v.value });
      return;
    }
    if (this.ackMode === "refuse") {
      emit({ event: "ack-refused", station: this.name, value: v.value });
      callback(null, StatusCodes.BadUserAccessDenied);
      return;
    }
    this.values.set(this.k("AckCtr"), v.value);
    callback(null, StatusCodes.Good);
  }

  // setAckMode sets how AckCtr writes are answered; held writes are answered
  // BadTimeout, not applied, when the mode changes.
  setAckMode(mode) {
    this.ackMode = mode;
    if (mode === "hang") return;
    for (const cb of this.hung.splice(0)) {
      emit({ event: "ack-dropped", station: this.name });
      cb(null, StatusCodes.BadTimeout);
    }
  }

  // fixIdentity puts the right identity into every held result that has a
  // bad one, on the nodes at once for the shown one; it returns the
  // counters fixed.
  fixIdentity() {
    const fixed = [];
    for (const res of this.queue) {
      if (res.identity.BodyNo === res.car.bodyNo && res.identity.VIN === res.car.vin) continue;
      res.identity = { BodyNo: res.car.bodyNo, VIN: res.car.vin };
      if (res === this.displayed) this.showIdentity(res);
      fixed.push(res.counter);
      emit({ event: "fixed", station: this.name, counter: res.counter });
    }
    return fixed;
  }

  // nodes lists the station's variables for the address space.
  nodes() {
    return [...this.types].map(([k, [type, len]]) => ({ key: k, type, len, writable: k === this.k("AckCtr") }));
  }
}

// OPC UA value plumbing.

const variant = (type, len, value) =>
  new Variant({ dataType: S7[type], arrayType: len ? VariantArrayType.Array : VariantArrayType.Scalar, value });

// getter returns a node's timestamped getter: the value with Good, or an
// injected status (with the value when it is Uncertain, without when Bad).
function getter(type, len, value, status) {
  return () => {
    const now = new Date();
    const st = status ? status() : undefined;
    if (st) {
      const sc = StatusCodes[st];
      const dv = { statusCode: sc, sourceTimestamp: now, serverTimestamp: now };
      if (st.startsWith("Uncertain")) dv.value = variant(type, len, value());
      return new DataValue(dv);
    }
    return new DataValue({ value: variant(type, len, value()), statusCode: StatusCodes.Good, sourceTimestamp: now, serverTimestamp: now });
  };
}

function addVar(ns, parent, browseName, nodeKey, type, len, bind) {
  const access = bind.timestamped_set ? "CurrentRead | CurrentWrite" : "CurrentRead";
  return ns.addVariable({
    componentOf: parent,
    browseName,
    nodeId: `s=${nodeKey}`,
    dataType: S7[type],
    valueRank: len ? 1 : -1,
    arrayDimensions: len ? [len] : null,
    accessLevel: access,
    userAccessLevel: access,
    minimumSamplingInterval: 100,
    value: bind,
  });
}

// valueOnlyWrites makes v refuse, as an S7 does, a write that carries a
// status or a timestamp with the value (BadWriteNotSupported). node-opcua
// stamps a write before the setter sees it, so the check sits in front.
function valueOnlyWrites(v) {
  const write = v.writeAttribute.bind(v);
  v.writeAttribute = (context, wv, callback) => {
    const dv = wv.value;
    if (wv.attributeId === AttributeIds.Value && dv &&
      (dv.sourceTimestamp || dv.serverTimestamp || (dv.statusCode && !dv.statusCode.equals(StatusCodes.Good)))) {
      callback(null, StatusCodes.BadWriteNotSupported);
      return;
    }
    write(context, wv, callback);
  };
}

// addStation adds a station's handshake and result DBs under dbs.
function addStation(ns, dbs, st) {
  const objects = new Map(); // S7 symbol of a DB, struct array or element → object
  const object = (parent, browseName, k) => {
    if (!objects.has(k)) objects.set(k, ns.addObject({ componentOf: parent, browseName, nodeId: `s=${k}` }));
    return objects.get(k);
  };
  for (const n of st.nodes()) {
    // "DB101"."Nut"[2]."Nm" → DB101 > Nut > Nut[2] > Nm
    const parts = n.key.match(/"[^"]*"|\[\d+\]/g);
    let sym = parts[0];
    let name = parts[0].slice(1, -1);
    let parent = object(dbs, name, sym);
    for (const p of parts.slice(1, -1)) {
      if (p.startsWith("[")) {
        sym += p;
        parent = object(parent, name + p, sym);
      } else {
        sym += "." + p;
        name = p.slice(1, -1);
        parent = object(parent, name, sym);
      }
    }
    const bind = { timestamped_get: getter(n.type, n.len, () => st.values.get(n.key), () => st.status(n.key)) };
    if (n.writable) bind.timestamped_set = (dv, cb) => st.writeAck(dv, cb);
    const v = addVar(ns, parent, parts[parts.length - 1].slice(1, -1), n.key, n.type, n.len, bind);
    if (n.writable) valueOnlyWrites(v);
  }
}

// addNoise adds what else an S7-1500 of a real line holds: a conveyor motor
// DB, a diagnostics DB, an instance DB per nutrunner, inputs, outputs and
// memory bits. Some values move, none is a station tag.
function addNoise(ns, plc, dbs, idbs, stations, scans) {
  const t0 = Date.now();
  const secs = () => (Date.now() - t0) / 1000;
  const fixed = (v) => () => v;
  const addAll = (parent, prefix, vars) => {
    for (const [name, type, value, len, writable] of vars) {
      const k = `${prefix}."${name}"`;
      let v = value;
      const bind = { timestamped_get: getter(type, len, typeof v === "function" ? v : () => v) };
      if (writable) {
        bind.timestamped_get = getter(type, len, () => v);
        bind.timestamped_set = (dv, cb) => {
          if (dv.value.dataType !== S7[type]) return cb(null, StatusCodes.BadTypeMismatch);
          v = dv.value.value;
          cb(null, StatusCodes.Good);
        };
      }
      const node = addVar(ns, parent, name, k, type, len, bind);
      if (writable) valueOnlyWrites(node);
    }
  };
  const motor = ns.addObject({ componentOf: dbs, browseName: "Conveyor_M1", nodeId: 's="Conveyor_M1"' });
  addAll(motor, '"Conveyor_M1"', [
    ["Cmd_Run", "Bool", true, 0, true], ["Running", "Bool", true], ["SpeedSetpoint", "Real", 12.5, 0, true],
    ["SpeedActual", "Real", () => 12.5 + Math.sin(secs()) * 0.3], ["Current_A", "Real", () => 3.1 + Math.sin(secs() / 3) * 0.2],
    ["RunHours", "DInt", () => 18234 + Math.floor(secs() / 3600)], ["FaultWord", "Word", 0],
  ]);
  const diag = ns.addObject({ componentOf: dbs, browseName: "Diagnostics", nodeId: 's="Diagnostics"' });
  addAll(diag, '"Diagnostics"', [
    ["FirmwareVersion", "String", "V3.1.2"], ["ScanCtr", "DInt", () => scans.n | 0], ["CpuLoad", "Int", () => 18 + Math.floor(secs()) % 7],
    ["CycleTimeMs", "Real", () => 4.2 + (Math.floor(secs() * 10) % 5) / 10], ["OpcUaSessions", "Int", 1],
    ["ErrorBuffer", "DInt", new Int32Array(10), 10],
    ["LastErrorCode", "DWord", 0x2521_4001 >>> 0],
  ]);
  for (const st of stations) {
    const name = `${st.name}_Nutrunner_DB`;
    const idb = ns.addObject({ componentOf: idbs, browseName: name, nodeId: `s="${name}"` });
    addAll(idb, `"${name}"`, [["Enable", "Bool", true], ["Busy", "Bool", () => Math.floor(secs() * 2) % 2 === 0],
      ["ProgramNo", "Int", 3], ["SpindleCount", "Int", NUTS], ["ToolTemp", "Real", () => 31.5 + Math.sin(secs() / 10)]]);
  }
  const area = (name, vars) => {
    const obj = ns.addObject({ componentOf: plc, browseName: name, nodeId: `s=${name}` });
    for (const [tag, type, value] of vars) {
      addVar(ns, obj, tag, `"${tag}"`, type, 0, { timestamped_get: getter(type, 0, typeof value === "function" ? value : fixed(value)) });
    }
  };
  area("Inputs", [["EStop_OK", "Bool", true], ["LightCurtain_OK", "Bool", true], ["AirPressure_OK", "Bool", true]]);
  area("Outputs", [["Lamp_Green", "Bool", true], ["Lamp_Red", "Bool", false], ["Horn", "Bool", false]]);
  area("Memory", [["Clock_1Hz", "Bool", () => Math.floor(secs()) % 2 === 0], ["AlwaysTRUE", "Bool", true], ["FirstScan", "Bool", false]]);
  ns.addObject({ componentOf: plc, browseName: "Timers", nodeId: "s=Timers" });
  ns.addObject({ componentOf: plc, browseName: "Counters", nodeId: "s=Counters" });
}

// Commands on stdin. Each is a JSON object with "cmd", optionally "id"
// (echoed in the done or error event) and "station" (a station name; pause
// and resume without one apply to every station).
const COMMANDS = {
  pause: (sts) => sts.forEach((st) => { st.paused = true; }),
  resume: (sts) => sts.forEach((st) => { st.paused = false; }),
  // {"cmd":"bad-quality","station":"NR","node":"\"DB201\".\"Nut\"[2].\"Nm\"","status":"BadSensorFailure","cycles":1}
  "bad-quality": ([st], c) => {
    const node = String(c.node || "").replace(/^ns=3;s=/, "");
    if (!st.types.has(node)) throw new Error(`station ${st.name} has no node ${c.node}`);
    const status = String(c.status || "");
    if (!/^(Bad|Uncertain)/.test(status) || !StatusCodes[status]) throw new Error(`status ${c.status}: want a Bad… or Uncertain… status code name`);
    st.pendingBad.push({ node, status, results: positive(c.cycles, 1) });
  },
  // {"cmd":"bad-identity","station":"FR"[,"fields":["BodyNo"|"VIN"]][,"vin":"NOREAD"][,"cycles":1]}
  "bad-identity": ([st], c) => {
    const own = [st.hasBody && "BodyNo", st.hasVIN && "VIN"].filter(Boolean);
    const fields = c.fields == null ? own : c.fields;
    if (!Array.isArray(fields) || fields.length === 0) throw new Error(`fields ${JSON.stringify(c.fields)}: want a list of ${own.join(", ")}`);
    for (const f of fields) if (!own.includes(f)) throw new Error(`station ${st.name} has no identity field ${f}; it has ${own.join(", ")}`);
    for (let i = positive(c.cycles, 1); i > 0; i--) st.pendingIdentity.push({ fields, vin: c.vin != null ? String(c.vin) : null });
  },
  "fix-identity": ([st]) => {
    if (st.fixIdentity().length === 0) throw new Error(`station ${st.name} holds no result with a bad identity`);
  },
  "ack-hang": ([st]) => st.setAckMode("hang"),
  "ack-refuse": ([st]) => st.setAckMode("refuse"),
  "ack-normal": ([st]) => st.setAckMode("normal"),
  // {"cmd":"fault","station":"FR","code":17}; code 0 clears the fault
  fault: ([st], c) => {
    const code = Number(c.code);
    if (!Number.isInteger(code) || code < 0 || code > 32767) throw new Error(`fault code ${c.code}: want 0..32767`);
    st.fault = code;
  },
  // {"cmd":"maintenance","station":"FR","on":true}
  maintenance: ([st], c) => { st.maintenance = Boolean(c.on); },
};

function positive(v, def) {
  if (v == null) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`cycles ${v}: want a whole number of results, 1 or more`);
  return n;
}

function command(stations, line) {
  let c;
  try {
    c = JSON.parse(line);
  } catch (err) {
    emit({ event: "error", error: `stdin: not a JSON command: ${err.message}` });
    return;
  }
  const reply = { id: c.id, cmd: c.cmd, station: c.station };
  try {
    const fn = Object.hasOwn(COMMANDS, c.cmd) ? COMMANDS[c.cmd] : null;
    if (!fn) throw new Error(`unknown command ${c.cmd}; want one of ${Object.keys(COMMANDS).join(", ")}`);
    let sts = stations;
    if (c.station != null) {
      sts = stations.filter((st) => st.name === c.station);
      if (sts.length === 0) throw new Error(`unknown station ${c.station}`);
    } else if (c.cmd !== "pause" && c.cmd !== "resume") {
      throw new Error(`${c.cmd} needs a station`);
    }
    fn(sts, c);
    emit({ event: "done", ...reply });
  } catch (err) {
    emit({ event: "error", ...reply, error: err.message });
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const pki = o.pki || path.join(os.tmpdir(), `keiline-foreign-plc-${process.pid}`);
  const certificateManager = new OPCUACertificateManager({
    rootFolder: pki, automaticallyAcceptUnknownCertificate: true, disableFileWatchers: true,
  });
  await certificateManager.initialize();
  const policies = [SecurityPolicy.Basic256Sha256];
  const modes = [MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt];
  if (!o.secureOnly) {
    policies.unshift(SecurityPolicy.None);
    modes.unshift(MessageSecurityMode.None);
  }
  const server = new OPCUAServer({
    port: o.port,
    host: "127.0.0.1",
    hostname: "127.0.0.1",
    serverCertificateManager: certificateManager,
    securityPolicies: policies,
    securityModes: modes,
    allowAnonymous: true,
    maxConnectionsPerEndpoint: 50,
    serverCapabilities: { maxSessions: 50, operationLimits: { maxNodesPerRead: o.maxNodesPerRead } },
    buildInfo: { productName: "SIMATIC S7-1500 look-alike (keiline foreign test PLC)", manufacturerName: "keiline tests", softwareVersion: "V3.1" },
    serverInfo: { applicationUri: APPLICATION_URI, productUri: "urn:keiline:foreign-test-plc" },
  });
  await server.initialize();

  const as = server.engine.addressSpace;
  as.registerNamespace(DI_NAMESPACE);
  const ns = as.registerNamespace(S7_NAMESPACE);
  if (ns.index !== 3) throw new Error(`the S7 namespace got index ${ns.index}, want 3`);
  const plc = ns.addObject({ organizedBy: as.rootFolder.objects, browseName: "PLC_1", nodeId: "s=PLC" });
  const dbs = ns.addObject({ componentOf: plc, browseName: "DataBlocksGlobal", nodeId: "s=DataBlocksGlobal" });
  const idbs = ns.addObject({ componentOf: plc, browseName: "DataBlocksInstance", nodeId: "s=DataBlocksInstance" });
  const stations = [];
  o.stations.forEach((spec, i) => {
    const st = new Station(o, i, spec, stations[i - 1] || null);
    if (i > 0) stations[i - 1].downstream = st;
    stations.push(st);
  });
  const scans = { n: 0 }; // PLC scans so far, shown in "Diagnostics"."ScanCtr"
  addNoise(ns, plc, dbs, idbs, o.stations, scans);
  for (const st of stations) addStation(ns, dbs, st);
  for (const st of stations) st.scan();

  await server.start();
  const scanAll = () => {
    stations.forEach((st) => st.scan());
    scans.n++;
  };
  const timers = [
    // downstream first, so a car moves one station per cycle
    setInterval(() => { [...stations].reverse().forEach((st) => st.finishCycle()); scanAll(); }, o.cycleMs),
    setInterval(scanAll, o.scanMs),
    setInterval(() => stations.forEach((st) => st.tickLife()), o.lifeMs),
  ];
  emit({ event: "ready", endpoint: server.getEndpointUrl(), namespace: ns.index, stations: o.stations });

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    timers.forEach(clearInterval);
    try {
      await server.shutdown(0);
      await certificateManager.dispose();
    } finally {
      process.exit(0);
    }
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  const rl = readline.createInterface({ input: process.stdin });
  rl.on("line", (line) => { if (line.trim()) command(stations, line); });
  rl.on("close", stop);
  process.stdin.on("error", stop);
  process.stdout.on("error", stop); // nobody reads the events any more
}

main().catch((err) => {
  process.stderr.write(`foreign PLC failed: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
