// Station PLCs made with node-opcua, for keiline's interop tests.
//
// One OPC UA server exposes the tags of one or more stations as
// docs/plc-tags.md describes them and runs the PLC side of the handshake of
// docs/plc-handshake.md for each: every --cycle-ms it finishes a cycle,
// fills the result block, then moves CycleCounter and sets DataReady; it
// shows the next result only once AckCounter == CycleCounter; with
// --max-unacked results waiting it goes to State "blocked" with FaultCode
// 900 and holds its car.
//
// Unlike keiline's simulator (gopcua, security None only), it offers the
// secure channel: None, and Basic256Sha256, Aes128_Sha256_RsaOaep and
// Aes256_Sha256_RsaPss with Sign and SignAndEncrypt; anonymous,
// username/password (PLC_USERS="name:password,..." in the environment, so
// no password is on a command line) and X.509 certificate users; and a
// server limit on the nodes of one Read (--max-nodes-per-read). It accepts
// any client certificate (the keiline side of trust is what is tested).
//
// The nodes are arranged like a vendor PLC would: a folder per station and
// sub-folders for the result block and each slot, with string node ids
// ns=1;s=<STATION>.<LogicalName> (for example ns=1;s=T01.Joint2.TorqueNm).
// Besides the station tags, a few read-only diagnostic nodes exist
// (Diag.Firmware, Diag.ScanTimeMs) that match no logical tag.
//
// Usage:
//   node server.js --stations T01,T02 --parts 2 --joints 2 --tests 1 \
//     [--port 0] [--pki DIR] [--cycle-ms 200] [--cycles 0] [--max-unacked 3] \
//     [--max-nodes-per-read 0] [--secure-only] [--no-anonymous]
//
// When it listens it prints one JSON line to stdout:
//   {"event":"ready","endpoint":"opc.tcp://127.0.0.1:PORT"}
// and then one line per acknowledged cycle:
//   {"event":"acked","station":"T01","counter":N}
// (node-opcua prints its own warnings on stdout too.) It stops on SIGTERM or
// SIGINT, or when its stdin closes, so it never outlives the test that
// started it.
"use strict";

const path = require("path");
const os = require("os");
const {
  OPCUAServer,
  OPCUACertificateManager,
  Variant,
  VariantArrayType,
  DataType,
  StatusCodes,
  SecurityPolicy,
  MessageSecurityMode,
} = require("node-opcua");

function parseArgs(argv) {
  const o = {
    stations: ["T01"], parts: 1, joints: 1, tests: 1, port: 0, pki: "",
    cycleMs: 200, cycles: 0, maxUnacked: 3, maxNodesPerRead: 0,
    secureOnly: false, anonymous: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case "--stations": o.stations = next().split(",").filter(Boolean); break;
      case "--parts": o.parts = Number(next()); break;
      case "--joints": o.joints = Number(next()); break;
      case "--tests": o.tests = Number(next()); break;
      case "--port": o.port = Number(next()); break;
      case "--pki": o.pki = next(); break;
      case "--cycle-ms": o.cycleMs = Number(next()); break;
      case "--cycles": o.cycles = Number(next()); break;
      case "--max-unacked": o.maxUnacked = Number(next()); break;
      case "--max-nodes-per-read": o.maxNodesPerRead = Number(next()); break;
      case "--secure-only": o.secureOnly = true; break;
      case "--no-anonymous": o.anonymous = false; break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  return o;
}

function parseUsers(s) {
  const users = new Map();
  for (const pair of (s || "").split(",")) {
    const i = pair.indexOf(":");
    if (i > 0) users.set(pair.slice(0, i), pair.slice(i + 1));
  }
  return users;
}

// VIN check digit of 49 CFR 565 (as keiline's internal/vin).
const translit = (() => {
  const t = {};
  for (let c = 0; c <= 9; c++) t[String(c)] = c;
  Object.assign(t, {
    A: 1, B: 2, C: 3, D: 4, E: 5, F: 6, G: 7, H: 8, J: 1, K: 2, L: 3, M: 4, N: 5, P: 7, R: 9,
    S: 2, T: 3, U: 4, V: 5, W: 6, X: 7, Y: 8, Z: 9,
  });
  return t;
})();
const weights = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];

function makeVIN(serial) {
  const v = "7KLKW1NA0XU" + String(serial).padStart(6, "0");
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += translit[v[i]] * weights[i];
  const r = sum % 11;
  return v.slice(0, 8) + (r === 10 ? "X" : String(r)) + v.slice(9);
}

// The tags of a station with its slot counts: [logical name, DataType].
function stationTags(o) {
  const tags = [
    ["Heartbeat", DataType.Int32], ["State", DataType.String], ["FaultCode", DataType.Int32],
    ["FaultText", DataType.String], ["Andon", DataType.Boolean], ["StateCounter", DataType.UInt32],
    ["VinPresent", DataType.String], ["CycleCounter", DataType.UInt32], ["DataReady", DataType.Boolean],
    ["AckCounter", DataType.UInt32],
    ["Result.Vin", DataType.String], ["Result.Model", DataType.String], ["Result.Variant", DataType.String],
    ["Result.Colour", DataType.String], ["Result.Status", DataType.String],
    ["Result.StartTime", DataType.Int64], ["Result.EndTime", DataType.Int64],
  ];
  const slot = (prefix, n, fields) => {
    for (let i = 1; i <= n; i++) for (const [f, t] of fields) tags.push([`${prefix}${i}.${f}`, t]);
  };
  slot("Part", o.parts, [["PartNumber", DataType.String], ["Serial", DataType.String], ["Lot", DataType.String], ["Supplier", DataType.String]]);
  slot("Joint", o.joints, [["Name", DataType.String], ["Tool", DataType.String], ["TorqueNm", DataType.Double], ["AngleDeg", DataType.Double], ["OK", DataType.Boolean]]);
  slot("Test", o.tests, [["Name", DataType.String], ["Unit", DataType.String], ["Value", DataType.Double], ["Low", DataType.Double], ["High", DataType.Double], ["OK", DataType.Boolean]]);
  tags.push(["Diag.Firmware", DataType.String], ["Diag.ScanTimeMs", DataType.Double]);
  return tags;
}

function zero(t) {
  switch (t) {
    case DataType.String: return "";
    case DataType.Boolean: return false;
    case DataType.Int64: return [0, 0];
    default: return 0;
  }
}

// int64 returns v as node-opcua's [high, low] Int64 pair.
function int64(v) {
  return [Math.floor(v / 0x100000000), v >>> 0];
}

// result makes cycle n's result block, deterministic in n.
function result(o, n) {
  const end = Date.now();
  const r = {
    "Result.Vin": makeVIN(n), "Result.Model": "KW", "Result.Variant": n % 2 ? "4WD" : "2WD",
    "Result.Colour": "pearl white", "Result.Status": "OK",
    "Result.StartTime": int64(end - 1000), "Result.EndTime": int64(end),
  };
  for (let i = 1; i <= o.parts; i++) {
    Object.assign(r, {
      [`Part${i}.PartNumber`]: `PN-${i}00`, [`Part${i}.Serial`]: `S${n}-${i}`,
      [`Part${i}.Lot`]: `LOT${i}`, [`Part${i}.Supplier`]: `SUP${i}`,
    });
  }
  for (let i = 1; i <= o.joints; i++) {
    Object.assign(r, {
      [`Joint${i}.Name`]: `joint ${i}`, [`Joint${i}.Tool`]: `NR-${i}`,
      [`Joint${i}.TorqueNm`]: 100 + i + n / 100, [`Joint${i}.AngleDeg`]: 30 + i, [`Joint${i}.OK`]: true,
    });
  }
  for (let i = 1; i <= o.tests; i++) {
    Object.assign(r, {
      [`Test${i}.Name`]: `test ${i}`, [`Test${i}.Unit`]: "mm", [`Test${i}.Value`]: 1.5,
      [`Test${i}.Low`]: 1, [`Test${i}.High`]: 2, [`Test${i}.OK`]: true,
    });
  }
  return r;
}

// addStation adds the nodes of station id under objects and returns its
// PLC program: cycle() finishes a cycle, heartbeat() ticks.
function addStation(ns, objects, id, o) {
  const root = ns.addFolder(objects, { browseName: id, nodeId: `s=${id}` });
  const folders = new Map();
  const folder = (name) => {
    if (!folders.has(name)) folders.set(name, ns.addFolder(root, { browseName: name, nodeId: `s=${id}.${name}` }));
    return folders.get(name);
  };
  const values = new Map();
  const st = { queue: [], next: 1, produced: 0 };
  const set = (tag, v) => values.set(tag, v);

  for (const [tag, type] of stationTags(o)) {
    values.set(tag, zero(type));
    const dot = tag.lastIndexOf(".");
    const parent = dot < 0 ? root : folder(tag.slice(0, dot));
    const writable = tag === "AckCounter";
    ns.addVariable({
      componentOf: parent,
      browseName: dot < 0 ? tag : tag.slice(dot + 1),
      nodeId: `s=${id}.${tag}`,
      dataType: type,
      accessLevel: writable ? "CurrentRead | CurrentWrite" : "CurrentRead",
      userAccessLevel: writable ? "CurrentRead | CurrentWrite" : "CurrentRead",
      minimumSamplingInterval: 50,
      value: {
        get: () => new Variant({ dataType: type, arrayType: VariantArrayType.Scalar, value: values.get(tag) }),
        set: writable ? (variant) => {
          if (variant.dataType !== DataType.UInt32) return StatusCodes.BadTypeMismatch;
          values.set(tag, variant.value);
          acknowledge(variant.value);
          return StatusCodes.Good;
        } : undefined,
      },
    });
  }
  set("Diag.Firmware", "V4.2 (node-opcua)");
  set("Diag.ScanTimeMs", 1.5);
  set("State", "running");

  const changeState = (state, code, text) => {
    if (values.get("State") === state && values.get("FaultCode") === code) return;
    set("State", state);
    set("FaultCode", code);
    set("FaultText", text);
    set("StateCounter", values.get("StateCounter") + 1);
  };

  // show puts the head of the queue into the result block: the block
  // first, then CycleCounter and DataReady.
  const show = () => {
    if (st.queue.length === 0) {
      set("DataReady", false);
      return;
    }
    const c = st.queue[0];
    for (const [k, v] of Object.entries(c.block)) set(k, v);
    set("CycleCounter", c.counter);
    set("DataReady", true);
  };

  function acknowledge(counter) {
    if (st.queue.length === 0 || st.queue[0].counter !== counter) return;
    st.queue.shift();
    process.stdout.write(JSON.stringify({ event: "acked", station: id, counter }) + "\n");
    show();
    if (st.queue.length < o.maxUnacked) changeState("running", 0, "");
  }

  return {
    cycle() {
      if (o.cycles > 0 && st.produced >= o.cycles) {
        set("VinPresent", "");
        return;
      }
      if (st.queue.length >= o.maxUnacked) {
        changeState("blocked", 900, "MES not acknowledging");
        return;
      }
      const counter = st.next++;
      st.produced++;
      set("VinPresent", makeVIN(counter + 1));
      st.queue.push({ counter, block: result(o, counter) });
      if (st.queue.length === 1) show();
    },
    heartbeat() {
      set("Heartbeat", (values.get("Heartbeat") + 1) | 0);
    },
  };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const users = parseUsers(process.env.PLC_USERS);
  const pki = o.pki || path.join(os.tmpdir(), `keiline-node-plc-${process.pid}`);
  const certificateManager = new OPCUACertificateManager({
    rootFolder: pki, automaticallyAcceptUnknownCertificate: true, disableFileWatchers: true,
  });
  await certificateManager.initialize();
  const userCertificateManager = new OPCUACertificateManager({
    rootFolder: path.join(pki, "user"), automaticallyAcceptUnknownCertificate: true, disableFileWatchers: true,
  });
  await userCertificateManager.initialize();

  const policies = [SecurityPolicy.Basic256Sha256, SecurityPolicy.Aes128_Sha256_RsaOaep, SecurityPolicy.Aes256_Sha256_RsaPss];
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
    userCertificateManager,
    securityPolicies: policies,
    securityModes: modes,
    allowAnonymous: o.anonymous,
    userManager: { isValidUser: (name, password) => users.has(name) && users.get(name) === password },
    maxConnectionsPerEndpoint: 200,
    serverCapabilities: {
      maxSessions: 200,
      operationLimits: o.maxNodesPerRead > 0 ? { maxNodesPerRead: o.maxNodesPerRead } : {},
    },
    buildInfo: { productName: "keiline node-opcua test PLC", manufacturerName: "keiline" },
    serverInfo: { applicationUri: "urn:keiline:test-plc", productUri: "urn:keiline:test-plc" },
  });
  await server.initialize();

  const ns = server.engine.addressSpace.getOwnNamespace();
  const plcs = o.stations.map((id) => addStation(ns, server.engine.addressSpace.rootFolder.objects, id, o));

  await server.start();
  const timers = [
    setInterval(() => plcs.forEach((p) => p.cycle()), o.cycleMs),
    setInterval(() => plcs.forEach((p) => p.heartbeat()), 1000),
  ];
  const endpoint = server.getEndpointUrl();
  process.stdout.write(JSON.stringify({ event: "ready", endpoint }) + "\n");

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    timers.forEach(clearInterval);
    try {
      await server.shutdown(0);
      await certificateManager.dispose();
      await userCertificateManager.dispose();
    } finally {
      process.exit(0);
    }
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.stdin.on("end", stop);
  process.stdin.on("error", stop);
  process.stdin.resume();
}

main().catch((err) => {
  process.stderr.write(`test PLC failed: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
