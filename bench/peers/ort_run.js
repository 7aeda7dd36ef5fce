#!/usr/bin/env node
// Runs one ONNX model in ONNX Runtime (onnxruntime-node, CPU) and prints its latency as JSON.
//
//   node ort_run.js MODEL.onnx --input NAME=FILE.npy ... [--threads N] [--warmup W] [--iters I]
//                   [--output-dir DIR] [--optimized-model FILE.onnx]
//
// Session: intraOpNumThreads N, interOpNumThreads 1, graphOptimizationLevel 'all', sequential
// execution. Timing comes from ONNX Runtime's own profiler (the durations of the trace's "model_run"
// events, i.e. InferenceSession::Run inside the C++ library), so Node's tensor copies are left out;
// the Node-side wall time of session.run is printed beside it for reference. Prints one JSON object:
//   {"model", "threads", "p50_ms", "mean_ms", "min_ms", "max_ms", "runs", "wall_p50_ms", "ort_version"}
// p50 is the nearest-rank median, as in quarks-bench. With --output-dir, the outputs of the last run
// are written as DIR/<name>.npy (float32, int64 or bool, C order). Exit status: 0 success, 1 error.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const ort = require('onnxruntime-node');

function fail(message) {
  process.stderr.write(`ort_run: error: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const opt = {model: null, inputs: [], threads: 1, warmup: 5, iters: 50, outputDir: null, optimizedModel: null};
  const value = (i, flag) => {
    if (i + 1 >= argv.length) fail(`${flag} needs a value`);
    return argv[i + 1];
  };
  const count = (text, flag, min) => {
    if (!/^[0-9]+$/.test(text) || Number(text) < min) fail(`${flag}: '${text}' is not an integer >= ${min}`);
    return Number(text);
  };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    if (a === '--input' || a === '-i') {
      const v = value(i++, a);
      const eq = v.indexOf('=');
      if (eq <= 0 || eq + 1 === v.length) fail(`--input: '${v}' is not NAME=FILE.npy`);
      opt.inputs.push([v.slice(0, eq), v.slice(eq + 1)]);
    } else if (a === '--threads') {
      opt.threads = count(value(i++, a), a, 1);
    } else if (a === '--warmup') {
      opt.warmup = count(value(i++, a), a, 0);
    } else if (a === '--iters') {
      opt.iters = count(value(i++, a), a, 1);
    } else if (a === '--output-dir') {
      opt.outputDir = value(i++, a);
    } else if (a === '--optimized-model') {
      opt.optimizedModel = value(i++, a);
    } else if (a.startsWith('-')) {
      fail(`unknown option ${a}`);
    } else if (opt.model === null) {
      opt.model = a;
    } else {
      fail(`a second model '${a}'`);
    }
  }
  if (opt.model === null) fail('give MODEL.onnx');
  return opt;
}

// --- NumPy .npy files (versions 1-3, little-endian, C order) ------------------------------------------

const NPY_TYPES = {
  '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array], '<i4': ['int32', Int32Array],
  '<i8': ['int64', BigInt64Array], '|b1': ['bool', Uint8Array], '<b1': ['bool', Uint8Array],
};

function readNpy(file) {
  let buf;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    fail(`${file}: ${e.message}`);
  }
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') fail(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shapeText) fail(`${file}: malformed .npy header ${header.trim()}`);
  if (fortran[1] === 'True') fail(`${file}: Fortran-order arrays are not supported`);
  const type = NPY_TYPES[descr[1]];
  if (!type) fail(`${file}: dtype '${descr[1]}' is not supported (float32, float64, int32, int64, bool)`);
  const shape = shapeText[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  const bytes = count * type[1].BYTES_PER_ELEMENT;
  if (buf.length - offset < bytes) fail(`${file}: data has ${buf.length - offset} bytes but the shape needs ${bytes}`);
  const data = new type[1](count);  // a copy: the file buffer need not be aligned
  Buffer.from(data.buffer).set(buf.subarray(offset, offset + bytes));
  return new ort.Tensor(type[0], type[0] === 'bool' ? Uint8Array.from(data, (x) => (x ? 1 : 0)) : data, shape);
}

function writeNpy(file, tensor) {
  const descr = {float32: '<f4', int64: '<i8', bool: '|b1', float64: '<f8', int32: '<i4'}[tensor.type];
  if (!descr) fail(`output type ${tensor.type} cannot be written`);
  const shape = tensor.dims.length === 1 ? `(${tensor.dims[0]},)` : `(${tensor.dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const prefix = Buffer.alloc(10);
  prefix.write('\x93NUMPY', 0, 'latin1');
  prefix[6] = 1;
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  const data = tensor.data;
  fs.writeFileSync(file, Buffer.concat([prefix, Buffer.from(header, 'latin1'),
                                        Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

// The same safe file names as quarks-run: characters other than [A-Za-z0-9_.-] and a leading '.' become '_'.
const fileStem = (name) => name.replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^\./, '_') || '_';

// --- timing ----------------------------------------------------------------------------------------------

function percentile(sorted, p) {
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(Math.max(rank, 1), sorted.length) - 1];
}

function summary(samplesMs) {
  const s = [...samplesMs].sort((a, b) => a - b);
  return {p50_ms: percentile(s, 50), mean_ms: s.reduce((a, b) => a + b, 0) / s.length, min_ms: s[0],
          max_ms: s[s.length - 1]};
}

async function main() {
  const opt = parseArgs(process.argv.slice(2));
  const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ort_run_'));
  try {
    const options = {
      executionProviders: ['cpu'],
      intraOpNumThreads: opt.threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      enableProfiling: true,
      profileFilePrefix: path.join(profileDir, 'profile'),
    };
    if (opt.optimizedModel) options.optimizedModelFilePath = path.resolve(opt.optimizedModel);
    let session;
    try {
      session = await ort.InferenceSession.create(opt.model, options);
    } catch (e) {
      fail(`${opt.model}: ${e.message}`);
    }
    const feeds = {};
    for (const [name, file] of opt.inputs) {
      if (!session.inputNames.includes(name)) {
        fail(`unknown input '${name}' (the model's inputs: ${session.inputNames.join(', ')})`);
      }
      if (name in feeds) fail(`input '${name}' is given more than once`);
      feeds[name] = readNpy(file);
    }
    const missing = session.inputNames.filter((n) => !(n in feeds));
    if (missing.length) fail(`missing input '${missing[0]}'; give --input ${missing[0]}=FILE.npy`);

    let outputs;
    for (let i = 0; i < opt.warmup; ++i) outputs = await session.run(feeds);
    const wall = [];
    for (let i = 0; i < opt.iters; ++i) {
      const t0 = process.hrtime.bigint();
      outputs = await session.run(feeds);
      wall.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    session.endProfiling();
    const traces = fs.readdirSync(profileDir).filter((f) => f.endsWith('.json'));
    if (traces.length !== 1) fail(`expected one profile trace in ${profileDir}, found ${traces.length}`);
    const events = JSON.parse(fs.readFileSync(path.join(profileDir, traces[0]), 'utf8'));
    const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').map((e) => e.dur / 1000);
    if (runs.length !== opt.warmup + opt.iters) {
      fail(`the profile has ${runs.length} model_run events, expected ${opt.warmup + opt.iters}`);
    }
    const timed = runs.slice(opt.warmup);  // events are in run order; the warmup runs come first

    if (opt.outputDir) {
      fs.mkdirSync(opt.outputDir, {recursive: true});
      for (const name of session.outputNames) {
        writeNpy(path.join(opt.outputDir, fileStem(name) + '.npy'), outputs[name]);
      }
    }
    await session.release();
    const result = {model: opt.model, threads: opt.threads, ...summary(timed), runs: timed.length,
                    wall_p50_ms: summary(wall).p50_ms, ort_version: ort.env.versions.node};
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    fs.rmSync(profileDir, {recursive: true, force: true});
  }
}

main().catch((e) => fail(e.stack || e.message));
