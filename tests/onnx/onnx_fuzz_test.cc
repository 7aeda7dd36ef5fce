// Deterministic mutation fuzzing of the ONNX importer: the committed fixtures
// (tests/onnx/models/*/model.onnx) are mutated at the byte level (flips, truncation, duplicated and
// inserted ranges, poisoned varints) and at the protobuf level (dims, data types, attribute types and
// values, names, node order, opsets, inserted nodes), then loaded with load_onnx_bytes; models that
// load are compiled and run on zero-filled inputs. Anything thrown must be a quarks::Error: another
// exception (std::bad_alloc included) fails the test, naming the model, the mutation kind and the
// seed, and the mutated bytes are written to the temp folder for reproduction.
//
// Every case has its own std::mt19937 seed, so a failure reproduces alone: set QUARKS_FUZZ_SEED to
// run only that case. QUARKS_FUZZ_SCALE multiplies the number of iterations (default 1; smaller
// under AddressSanitizer, which is several times slower). QUARKS_FUZZ_VERBOSE=1 prints each case
// before running it (to find a case that crashes the process under a sanitizer).
//
// fuzz_one() runs the body of the libFuzzer target fuzz_onnx_loader (tests/fuzz), so both fuzz the same path.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <random>
#include <span>

#include "fuzz/fuzz_bodies.hpp"
#include "ops/contract/sanitizers.hpp"
#include "quarks/onnx.hpp"
#include "quarks/quarks.hpp"

namespace fs = std::filesystem;

namespace quarks {
namespace {

#if defined(QUARKS_ADDRESS_SANITIZER) || defined(QUARKS_THREAD_SANITIZER)
constexpr double kSanitizerScale = 0.25;
#else
constexpr double kSanitizerScale = 1.0;
#endif

using fuzz::FuzzStats;
FuzzStats g_stats;
int g_verbose = 0;  // QUARKS_FUZZ_VERBOSE: 1 prints each case, 2 also the error it gave

// One fuzz input: the body of the libFuzzer target fuzz_onnx_loader (tests/fuzz/onnx_body.cc).
void fuzz_one(std::span<const std::byte> bytes) { fuzz::fuzz_onnx_model(bytes, &g_stats, g_verbose); }

// --- byte-level mutations ------------------------------------------------------------------------------

using Bytes = std::vector<std::byte>;

std::size_t pick(std::mt19937& rng, std::size_t n) { return n == 0 ? 0 : rng() % n; }

void mutate_bytes(Bytes& b, std::mt19937& rng) {
  const std::size_t n = b.size();
  switch (rng() % 8) {
    case 0:  // flip 1-8 bits
      for (int k = 1 + rng() % 8; k > 0 && n; --k) b[pick(rng, n)] ^= std::byte(1u << (rng() % 8));
      break;
    case 1:  // random bytes
      for (int k = 1 + rng() % 4; k > 0 && n; --k) b[pick(rng, n)] = std::byte(rng());
      break;
    case 2:  // truncate
      b.resize(pick(rng, n + 1));
      break;
    case 3: {  // duplicate a range (often a whole field) somewhere else
      if (!n) break;
      const std::size_t from = pick(rng, n), len = 1 + pick(rng, std::min<std::size_t>(n - from, 256));
      const Bytes piece(b.begin() + from, b.begin() + from + len);
      b.insert(b.begin() + pick(rng, n + 1), piece.begin(), piece.end());
      break;
    }
    case 4: {  // insert random bytes
      Bytes piece(1 + rng() % 16);
      for (auto& c : piece) c = std::byte(rng());
      b.insert(b.begin() + pick(rng, n + 1), piece.begin(), piece.end());
      break;
    }
    case 5: {  // poison a varint: a run of 0xff / 0x80 (continuation bits set)
      if (!n) break;
      const std::size_t at = pick(rng, n), len = 1 + rng() % 10;
      const std::byte v = rng() % 2 ? std::byte{0xff} : std::byte{0x80};
      for (std::size_t i = at; i < std::min(n, at + len); ++i) b[i] = v;
      break;
    }
    case 6: {  // delete a range
      if (!n) break;
      const std::size_t from = pick(rng, n), len = 1 + pick(rng, std::min<std::size_t>(n - from, 64));
      b.erase(b.begin() + from, b.begin() + from + len);
      break;
    }
    default: {  // an interesting value, 1-8 bytes little-endian
      static const std::uint64_t values[] = {
          0, 1, 0x7f, 0x80, 0xff, 0x7fffffff, 0xffffffff, 0x8000000000000000ull, 0x7fffffffffffffffull, ~0ull};
      const std::uint64_t v = values[rng() % std::size(values)];
      const std::size_t width = std::size_t{1} << (rng() % 4), at = pick(rng, n);
      for (std::size_t i = 0; i < width && at + i < n; ++i) b[at + i] = std::byte((v >> (8 * i)) & 0xff);
      break;
    }
  }
}

// --- protobuf-level mutations -----------------------------------------------------------------------------

const std::int64_t kInterestingInts[] = {0,
                                         1,
                                         -1,
                                         2,
                                         3,
                                         -2,
                                         7,
                                         8,
                                         9,
                                         std::int64_t{1} << 31,
                                         -(std::int64_t{1} << 31),
                                         std::int64_t{1} << 32,
                                         std::int64_t{1} << 40,
                                         std::int64_t{1} << 62,
                                         std::numeric_limits<std::int64_t>::max(),
                                         std::numeric_limits<std::int64_t>::min()};

std::int64_t interesting_int(std::mt19937& rng) {
  return rng() % 3 ? kInterestingInts[rng() % std::size(kInterestingInts)] : static_cast<std::int64_t>(rng() % 64) - 8;
}

float interesting_float(std::mt19937& rng) {
  static const float values[] = {0.0f,
                                 -0.0f,
                                 1.0f,
                                 -1.0f,
                                 0.5f,
                                 1e30f,
                                 -1e30f,
                                 1e-30f,
                                 std::numeric_limits<float>::infinity(),
                                 -std::numeric_limits<float>::infinity(),
                                 std::numeric_limits<float>::quiet_NaN(),
                                 3.0f};
  return values[rng() % std::size(values)];
}

const char* const kAttrNames[] = {"axis",         "axes",        "perm",        "to",        "alpha",
                                  "beta",         "transA",      "transB",      "keepdims",  "epsilon",
                                  "value",        "split",       "num_outputs", "allowzero", "start",
                                  "end",          "approximate", "f",           "g",         "activation",
                                  "coefficients", "kind",        "threshold",   "lambda",    "noop_with_empty_axes"};

// All value names of the graph: inputs, initializers, node outputs.
std::vector<std::string> value_names(const onnx::GraphProto& g) {
  std::vector<std::string> names;
  for (const auto& v : g.input()) names.push_back(v.name());
  for (const auto& t : g.initializer()) names.push_back(t.name());
  for (const auto& n : g.node())
    for (const auto& o : n.output()) names.push_back(o);
  return names;
}

std::string random_name(const onnx::GraphProto& g, std::mt19937& rng) {
  const auto names = value_names(g);
  switch (rng() % 6) {
    case 0: return "";
    case 1: return "undefined_" + std::to_string(rng() % 4);
    default: return names.empty() ? "x" : names[pick(rng, names.size())];
  }
}

onnx::TensorProto random_small_tensor(std::mt19937& rng) {
  onnx::TensorProto t;
  const int type = rng() % 3;
  t.set_data_type(type == 0   ? int{onnx::TensorProto::INT64}
                  : type == 1 ? int{onnx::TensorProto::FLOAT}
                              : static_cast<int>(1 + rng() % 20));
  const int rank = rng() % 3;
  std::int64_t n = 1;
  for (int i = 0; i < rank; ++i) {
    const std::int64_t d = rng() % 4 ? 1 + rng() % 4 : interesting_int(rng);
    t.add_dims(d);
    n = (d >= 0 && d <= 16) ? n * d : n;
  }
  if (rng() % 5 == 0) n += static_cast<std::int64_t>(rng() % 3) - 1;  // a count that does not match
  for (std::int64_t i = 0; i < std::clamp<std::int64_t>(n, 0, 64); ++i) {
    if (t.data_type() == onnx::TensorProto::FLOAT)
      t.add_float_data(interesting_float(rng));
    else if (t.data_type() == onnx::TensorProto::INT64)
      t.add_int64_data(interesting_int(rng));
    else
      t.add_int32_data(static_cast<std::int32_t>(interesting_int(rng)));
  }
  return t;
}

void mutate_attribute(onnx::AttributeProto& a, std::mt19937& rng) {
  switch (rng() % 8) {
    case 0: a.set_type(static_cast<onnx::AttributeProto::AttributeType>(rng() % 15)); break;
    case 1: a.set_i(interesting_int(rng)); break;
    case 2: a.set_f(interesting_float(rng)); break;
    case 3:
      a.clear_ints();
      for (int k = rng() % 10; k > 0; --k) a.add_ints(interesting_int(rng));
      break;
    case 4: {
      static const char* const strings[] = {"", "none", "tanh", "relu", "polynomial", "heaviside", "sign", "\xff"};
      a.set_s(strings[rng() % std::size(strings)]);
      break;
    }
    case 5: *a.mutable_t() = random_small_tensor(rng); break;
    case 6:
      a.clear_floats();
      for (int k = rng() % 6; k > 0; --k) a.add_floats(interesting_float(rng));
      break;
    default: a.set_name(kAttrNames[rng() % std::size(kAttrNames)]); break;
  }
}

void mutate_initializer(onnx::TensorProto& t, const onnx::GraphProto& g, std::mt19937& rng) {
  switch (rng() % 9) {
    case 0:
      if (t.dims_size()) t.set_dims(static_cast<int>(pick(rng, t.dims_size())), interesting_int(rng));
      break;
    case 1: t.add_dims(rng() % 2 ? 1 : interesting_int(rng)); break;
    case 2:
      if (t.dims_size()) t.mutable_dims()->RemoveLast();
      break;
    case 3: t.set_data_type(static_cast<std::int32_t>(rng() % 23)); break;
    case 4:
      if (t.has_raw_data()) t.mutable_raw_data()->resize(pick(rng, t.raw_data().size() + 9));
      break;
    case 5: {
      t.set_data_location(onnx::TensorProto::EXTERNAL);
      auto* e = t.add_external_data();
      e->set_key("location");
      static const char* const locations[] = {"w.bin", "../w.bin", "/etc/passwd", ""};
      e->set_value(locations[rng() % std::size(locations)]);
      break;
    }
    case 6: t.set_name(random_name(g, rng)); break;
    case 7: {  // a different value of the same shape and type: often folds into a different constant
      const auto type = t.data_type();
      auto dims = t.dims();
      t = random_small_tensor(rng);
      t.set_data_type(type);
      *t.mutable_dims() = dims;
      break;
    }
    default: t.clear_raw_data(); break;
  }
}

void mutate_node(onnx::NodeProto& n, const onnx::GraphProto& g, std::mt19937& rng) {
  static const std::vector<std::string> ops = onnx_supported_ops();
  switch (rng() % 9) {
    case 0: {
      const std::string& op = ops[pick(rng, ops.size())];
      const auto colon = op.find(':');
      n.set_op_type(colon == std::string::npos ? op : op.substr(colon + 1));
      n.set_domain(colon == std::string::npos ? "" : op.substr(0, colon));
      break;
    }
    case 1:
      if (n.input_size()) n.set_input(static_cast<int>(pick(rng, n.input_size())), random_name(g, rng));
      break;
    case 2: n.add_input(random_name(g, rng)); break;
    case 3:
      if (n.input_size()) n.mutable_input()->RemoveLast();
      break;
    case 4:
      if (n.output_size()) n.set_output(static_cast<int>(pick(rng, n.output_size())), random_name(g, rng));
      break;
    case 5: n.add_output("extra_" + std::to_string(rng() % 4)); break;
    case 6: {
      static const char* const domains[] = {"", "ai.onnx", "ai.quarks", "com.microsoft", "ai.onnx.ml"};
      n.set_domain(domains[rng() % std::size(domains)]);
      break;
    }
    case 7:
      if (n.attribute_size()) {
        mutate_attribute(*n.mutable_attribute(static_cast<int>(pick(rng, n.attribute_size()))), rng);
        break;
      }
      [[fallthrough]];
    default: {
      auto* a = n.add_attribute();
      a->set_name(kAttrNames[rng() % std::size(kAttrNames)]);
      a->set_type(onnx::AttributeProto::INT);
      a->set_i(interesting_int(rng));
      mutate_attribute(*a, rng);
      break;
    }
  }
}

// A new node of a random supported op reading existing values (and maybe new constants), whose
// output becomes a graph output: exercises every mapper with odd inputs.
void insert_node(onnx::GraphProto& g, std::mt19937& rng) {
  static const std::vector<std::string> ops = onnx_supported_ops();
  onnx::NodeProto n;
  const std::string& op = ops[pick(rng, ops.size())];
  const auto colon = op.find(':');
  n.set_op_type(colon == std::string::npos ? op : op.substr(colon + 1));
  if (colon != std::string::npos) n.set_domain(op.substr(0, colon));
  n.set_name("fuzz_node");
  for (int k = rng() % 4; k >= 0; --k) {
    if (rng() % 3 == 0) {
      onnx::TensorProto t = random_small_tensor(rng);
      t.set_name("fuzz_const_" + std::to_string(g.initializer_size()));
      n.add_input(t.name());
      *g.add_initializer() = t;
    } else {
      n.add_input(random_name(g, rng));
    }
  }
  for (int k = rng() % 3; k > 0; --k) {
    auto* a = n.add_attribute();
    a->set_name(kAttrNames[rng() % std::size(kAttrNames)]);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(interesting_int(rng));
    if (rng() % 2) mutate_attribute(*a, rng);
  }
  const int outputs = 1 + rng() % 2;
  for (int k = 0; k < outputs; ++k) {
    n.add_output("fuzz_out_" + std::to_string(k));
    g.add_output()->set_name("fuzz_out_" + std::to_string(k));
  }
  *g.mutable_node()->Add() = n;
  if (rng() % 2 && g.node_size() > 1) g.mutable_node()->SwapElements(g.node_size() - 1, pick(rng, g.node_size() - 1));
}

void mutate_model(onnx::ModelProto& m, std::mt19937& rng) {
  onnx::GraphProto& g = *m.mutable_graph();
  switch (rng() % 10) {
    case 0:
    case 1:
      if (g.initializer_size()) {
        mutate_initializer(*g.mutable_initializer(static_cast<int>(pick(rng, g.initializer_size()))), g, rng);
        break;
      }
      [[fallthrough]];
    case 2:
    case 3:
      if (g.node_size()) mutate_node(*g.mutable_node(static_cast<int>(pick(rng, g.node_size()))), g, rng);
      break;
    case 4: {  // node order
      if (g.node_size() < 2) break;
      if (rng() % 2) {
        g.mutable_node()->SwapElements(static_cast<int>(pick(rng, g.node_size())),
                                       static_cast<int>(pick(rng, g.node_size())));
      } else {
        std::shuffle(g.mutable_node()->begin(), g.mutable_node()->end(), rng);
      }
      break;
    }
    case 5: {  // graph inputs
      if (!g.input_size()) break;
      auto& in = *g.mutable_input(static_cast<int>(pick(rng, g.input_size())));
      auto* tt = in.mutable_type()->mutable_tensor_type();
      switch (rng() % 5) {
        case 0:
          if (tt->shape().dim_size()) {
            auto* d = tt->mutable_shape()->mutable_dim(static_cast<int>(pick(rng, tt->shape().dim_size())));
            if (rng() % 3)
              d->set_dim_value(interesting_int(rng));
            else
              d->set_dim_param(rng() % 2 ? "" : "fuzz_sym");
          }
          break;
        case 1: tt->set_elem_type(static_cast<std::int32_t>(rng() % 23)); break;
        case 2: tt->clear_shape(); break;
        case 3: *g.add_input() = in; break;
        default: tt->mutable_shape()->add_dim()->set_dim_value(rng() % 2 ? 1 : interesting_int(rng)); break;
      }
      break;
    }
    case 6: {  // graph outputs
      if (!g.output_size() || rng() % 4 == 0) {
        g.add_output()->set_name(random_name(g, rng));
      } else if (rng() % 2) {
        g.mutable_output(static_cast<int>(pick(rng, g.output_size())))->set_name(random_name(g, rng));
      } else {
        g.mutable_output()->RemoveLast();
      }
      break;
    }
    case 7: {  // opsets
      auto* o = m.opset_import_size() && rng() % 2 ? m.mutable_opset_import(0) : m.add_opset_import();
      static const char* const domains[] = {"", "ai.onnx", "ai.quarks", "com.example"};
      if (rng() % 2) o->set_domain(domains[rng() % std::size(domains)]);
      o->set_version(static_cast<std::int64_t>(rng() % 14) + 10);
      break;
    }
    default: insert_node(g, rng); break;
  }
}

// --- the test ------------------------------------------------------------------------------------------

struct Fixture {
  std::string name;
  Bytes bytes;
  onnx::ModelProto proto;
};

std::vector<Fixture> fixtures() {
  std::vector<Fixture> out;
  for (const auto& e : fs::directory_iterator(QUARKS_ONNX_MODELS)) {
    const fs::path p = e.path() / "model.onnx";
    if (!fs::exists(p)) continue;
    std::ifstream in(p, std::ios::binary);
    const std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Fixture f;
    f.name = e.path().filename().string();
    f.bytes.resize(s.size());
    std::memcpy(f.bytes.data(), s.data(), s.size());
    if (!f.proto.ParseFromString(s)) ADD_FAILURE() << p << " does not parse";
    out.push_back(std::move(f));
  }
  std::sort(out.begin(), out.end(), [](const Fixture& a, const Fixture& b) { return a.name < b.name; });
  return out;
}

long env_long(const char* name, long def) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtol(v, nullptr, 10) : def;
}

double env_double(const char* name, double def) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtod(v, nullptr) : def;
}

// Runs fuzz_one on `bytes`; a non-quarks exception or a slow case is a test failure naming the case.
void check_case(std::span<const std::byte> bytes, const std::string& what, std::uint32_t seed, double* slowest,
                std::string* slowest_case) {
  if (g_verbose) std::cerr << "fuzz case " << what << " seed " << seed << "\n";
  const auto t0 = std::chrono::steady_clock::now();
  auto save = [&] {
    const fs::path p = fs::temp_directory_path() / ("quarks_fuzz_" + std::to_string(seed) + ".onnx");
    std::ofstream(p, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    return p.string();
  };
  try {
    fuzz_one(bytes);
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << " (seed " << seed << "): " << typeid(e).name() << ": " << e.what() << " (bytes in "
                  << save() << ")";
  } catch (...) {
    ADD_FAILURE() << what << " (seed " << seed << "): a non-std exception (bytes in " << save() << ")";
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (s > *slowest) {
    *slowest = s;
    *slowest_case = what + " seed " + std::to_string(seed);
  }
  // A hang or a huge computation shows as a slow case (sanitizers make everything ~5x slower).
  EXPECT_LT(s, 5.0) << what << " (seed " << seed << ") took " << s << " s (bytes in " << save() << ")";
}

TEST(OnnxFuzz, MutatedFixturesGiveOnlyQuarksErrors) {
  const std::vector<Fixture> models = fixtures();
  ASSERT_GE(models.size(), 10u);
  const double scale = env_double("QUARKS_FUZZ_SCALE", 1.0) * kSanitizerScale;
  const long only_seed = env_long("QUARKS_FUZZ_SEED", -1);
  g_verbose = static_cast<int>(env_long("QUARKS_FUZZ_VERBOSE", 0));
  // Small models are cheap, so they get more iterations; the ~140 kB encoder fixtures fewer.
  auto iterations = [&](const Fixture& f) {
    return static_cast<int>(std::max(1.0, scale * (f.bytes.size() < 10000 ? 2000 : 300)));
  };

  // The unmutated fixtures load, compile and run in the harness (so it does exercise running).
  if (only_seed < 0) {
    for (const Fixture& f : models) {
      const long ran = g_stats.ran;
      if (g_verbose) std::cerr << "fixture " << f.name << "\n";
      fuzz_one(f.bytes);
      EXPECT_EQ(g_stats.ran, ran + 1) << f.name << " does not run in the fuzz harness";
    }
  }
  g_stats = {};
  FuzzStats byte_stats, proto_stats;
  auto add = [](FuzzStats& to, const FuzzStats& before) {
    to.cases += g_stats.cases - before.cases;
    to.loaded += g_stats.loaded - before.loaded;
    to.compiled += g_stats.compiled - before.compiled;
    to.ran += g_stats.ran - before.ran;
  };
  const auto t0 = std::chrono::steady_clock::now();
  double slowest = 0;
  std::string slowest_case;
  for (std::size_t m = 0; m < models.size(); ++m) {
    const Fixture& f = models[m];
    for (int i = 0; i < iterations(f); ++i) {
      const auto seed = static_cast<std::uint32_t>(1'000'000 * m + 2 * i);  // even: bytes, odd: protobuf
      if (only_seed < 0 || only_seed == seed) {
        const FuzzStats before = g_stats;
        std::mt19937 rng(seed);
        Bytes b = f.bytes;
        for (int k = 1 + rng() % 4; k > 0; --k) mutate_bytes(b, rng);
        check_case(b, f.name + " byte mutation " + std::to_string(i), seed, &slowest, &slowest_case);
        add(byte_stats, before);
      }
      if (only_seed < 0 || only_seed == seed + 1) {
        const FuzzStats before = g_stats;
        std::mt19937 rng(seed + 1);
        onnx::ModelProto p = f.proto;
        for (int k = 1 + rng() % 3; k > 0; --k) mutate_model(p, rng);
        const std::string s = p.SerializeAsString();
        check_case(std::as_bytes(std::span(s)), f.name + " protobuf mutation " + std::to_string(i), seed + 1, &slowest,
                   &slowest_case);
        add(proto_stats, before);
      }
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto line = [](const FuzzStats& s) {
    return std::to_string(s.cases) + " cases: " + std::to_string(s.loaded) + " loaded, " + std::to_string(s.compiled) +
           " compiled, " + std::to_string(s.ran) + " ran";
  };
  std::cout << "[ fuzz ] " << models.size() << " fixtures in " << seconds << " s; byte level " << line(byte_stats)
            << "; protobuf level " << line(proto_stats) << "; slowest case " << slowest << " s (" << slowest_case
            << ")\n";
  if (only_seed < 0) {
    // The mutations must leave a fair share of models loadable, or the run path is never fuzzed.
    EXPECT_GT(g_stats.ran, g_stats.cases / 20) << "too few mutated models ran";
  }
}

}  // namespace
}  // namespace quarks
