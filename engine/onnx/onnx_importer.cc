// load_onnx: protobuf -> checked graph -> topological walk that folds constants and maps each node
// onto quarks ops through the op table (engine/onnx/op_table.cc).
//
// Data flow: parse (size-limited) -> check opsets, names, initializers, inputs -> order nodes (cycles
// and undefined names are errors) -> for each node: fold on the host, fold by running its quarks
// mapping on constants, or map it into the GraphBuilder -> declare outputs -> GraphBuilder::build.
#include <onnx/onnx_pb.h>

#include <fstream>
#include <set>
#include <unordered_map>

#include "engine/onnx/host_eval.hpp"
#include "engine/onnx/import_context.hpp"
#include "engine/onnx/onnx_tensor.hpp"
#include "quarks/model.hpp"
#include "quarks/onnx.hpp"

namespace quarks {
namespace onnx_import {
namespace {

constexpr int kMinOpset = 13, kMaxOpset = 20;
const char* const kQuarksDomain = "ai.quarks";

std::string normalize_domain(const std::string& d) { return d == "ai.onnx" ? std::string() : d; }
std::string domain_label(const std::string& d) { return d.empty() ? "ai.onnx" : d; }

DType input_dtype(int elem_type, const std::string& name) {
  switch (elem_type) {
    case onnx::TensorProto::FLOAT: return DType::kF32;
    case onnx::TensorProto::INT64: return DType::kI64;
    case onnx::TensorProto::BOOL: return DType::kBool;
    default:
      throw Error(ErrorCode::kUnsupported, "graph input '" + name + "' has element type " + onnx_dtype_name(elem_type) +
                                               "; quarks takes FLOAT, INT64 and BOOL inputs");
  }
}

class Importer {
 public:
  Importer(const OnnxImportOptions& options, std::filesystem::path base_dir)
      : options_(options), base_dir_(std::move(base_dir)) {
    state_.builder = &builder_;
    state_.values = &values_;
    state_.unique_name = [this](const std::string& base) { return unique_name(base); };
    state_.value_name = [this](const std::string& name) {
      // Initializer and input names are reserved for their own values: claim it once.
      return claimed_.insert(name).second ? name : unique_name(name);
    };
  }

  Graph run(const onnx::ModelProto& model) {
    read_opsets(model);
    const onnx::GraphProto& g = model.graph();
    read_initializers(g);
    read_inputs(g);
    for (int index : topological_order(g)) map_node(g.node(index), index);
    declare_outputs(g);
    return builder_.build();
  }

 private:
  std::string unique_name(const std::string& base) {
    std::string name = base.empty() ? "value" : base;
    for (int k = 1; used_names_.count(name); ++k) name = base + "_" + std::to_string(k);
    used_names_.insert(name);
    return name;
  }

  void read_opsets(const onnx::ModelProto& model) {
    for (const auto& o : model.opset_import()) {
      const std::string d = normalize_domain(o.domain());
      if (d.empty() && (o.version() < kMinOpset || o.version() > kMaxOpset)) {
        throw Error(ErrorCode::kUnsupported, "the model imports opset " + std::to_string(o.version()) +
                                                 " of the default domain; quarks supports opsets " +
                                                 std::to_string(kMinOpset) + " to " + std::to_string(kMaxOpset));
      }
      if (d == kQuarksDomain && o.version() != 1) {
        throw Error(ErrorCode::kUnsupported, "the model imports version " + std::to_string(o.version()) +
                                                 " of the ai.quarks domain; quarks supports version 1");
      }
      opsets_[d] = static_cast<int>(o.version());
    }
    if (!opsets_.count("")) {
      throw Error(ErrorCode::kInvalidArgument, "the model does not import the default ONNX domain (no opset_import)");
    }
  }

  void read_initializers(const onnx::GraphProto& g) {
    for (const auto& init : g.initializer()) {
      if (init.name().empty()) throw Error(ErrorCode::kInvalidArgument, "an initializer has no name");
      if (values_.count(init.name())) {
        throw Error(ErrorCode::kInvalidArgument, "initializer '" + init.name() + "' is defined twice");
      }
      ImportedValue v;
      v.is_const = true;
      v.data = tensor_from_proto(init, "initializer '" + init.name() + "'", base_dir_);
      values_[init.name()] = std::move(v);
      used_names_.insert(init.name());
    }
    if (g.sparse_initializer_size() > 0) throw Error(ErrorCode::kUnsupported, "sparse initializers are not supported");
  }

  void read_inputs(const onnx::GraphProto& g) {
    std::set<std::string> declared;
    for (const auto& in : g.input()) {
      const std::string& name = in.name();
      if (name.empty()) throw Error(ErrorCode::kInvalidArgument, "a graph input has no name");
      if (!declared.insert(name).second) {
        throw Error(ErrorCode::kInvalidArgument, "graph input '" + name + "' is declared twice");
      }
      if (auto c = options_.constant_inputs.find(name); c != options_.constant_inputs.end()) {
        ImportedValue v;
        v.is_const = true;
        v.data = c->second;
        values_[name] = std::move(v);
        used_names_.insert(name);
        continue;
      }
      if (values_.count(name)) continue;  // an input with an initializer: the initializer is its value
      if (!in.type().has_tensor_type()) {
        throw Error(ErrorCode::kUnsupported, "graph input '" + name + "' is not a tensor");
      }
      const auto& tt = in.type().tensor_type();
      const DType dtype = input_dtype(tt.elem_type(), name);
      std::vector<Dim> dims = declared_dims(name, tt);
      ImportedValue v;
      v.value = builder_.input(name, dims, dtype);
      values_[name] = std::move(v);
      used_names_.insert(name);
      claimed_.insert(name);
    }
    for (const auto& [name, t] : options_.constant_inputs) {
      if (!declared.count(name))
        throw Error(ErrorCode::kNotFound, "constant_inputs names '" + name + "', which is not a graph input");
    }
    for (const auto& [name, s] : options_.input_shapes) {
      if (!declared.count(name))
        throw Error(ErrorCode::kNotFound, "input_shapes names '" + name + "', which is not a graph input");
    }
  }

  std::vector<Dim> declared_dims(const std::string& name, const onnx::TypeProto_Tensor& tt) {
    const auto given = options_.input_shapes.find(name);
    if (!tt.has_shape()) {
      if (given == options_.input_shapes.end()) {
        throw Error(ErrorCode::kInvalidArgument,
                    "graph input '" + name + "' has no declared shape; give it in OnnxImportOptions::input_shapes");
      }
      return {given->second.begin(), given->second.end()};
    }
    const auto& shape = tt.shape();
    if (given != options_.input_shapes.end() && given->second.rank() != shape.dim_size()) {
      throw Error(ErrorCode::kShapeMismatch, "graph input '" + name + "' has rank " + std::to_string(shape.dim_size()) +
                                                 " but input_shapes gives " + given->second.to_string());
    }
    std::vector<Dim> dims;
    for (int i = 0; i < shape.dim_size(); ++i) {
      const auto& d = shape.dim(i);
      if (d.has_dim_value() && d.dim_value() < 0) {
        throw Error(ErrorCode::kInvalidArgument, "graph input '" + name + "' has a negative dim");
      }
      if (given != options_.input_shapes.end()) {
        if (d.has_dim_value() && d.dim_value() != given->second[i]) {
          throw Error(ErrorCode::kShapeMismatch, "graph input '" + name + "' dim " + std::to_string(i) + " is " +
                                                     std::to_string(d.dim_value()) + " but input_shapes gives " +
                                                     given->second.to_string());
        }
        dims.emplace_back(given->second[i]);
      } else if (d.has_dim_value()) {
        dims.emplace_back(d.dim_value());
      } else {
        const std::string symbol =
            d.has_dim_param() && !d.dim_param().empty() ? d.dim_param() : name + "_dim" + std::to_string(i);
        if (auto fixed = options_.dims.find(symbol); fixed != options_.dims.end()) {
          if (fixed->second < 0) {
            throw Error(ErrorCode::kInvalidArgument, "graph input '" + name + "': OnnxImportOptions::dims gives '" +
                                                         symbol + "' the negative size " +
                                                         std::to_string(fixed->second));
          }
          dims.emplace_back(fixed->second);
        } else {
          dims.emplace_back(symbol);
        }
      }
    }
    // Sizes whose product overflows would wrap in every later shape computation.
    std::vector<std::int64_t> fixed;
    for (const Dim& d : dims)
      if (!d.is_symbolic()) fixed.push_back(d.value);
    if (checked_numel(fixed, kMaxTensorElements) < 0) {
      throw Error(ErrorCode::kInvalidArgument, "graph input '" + name + "' has too many elements (more than " +
                                                   std::to_string(kMaxTensorElements) + ")");
    }
    return dims;
  }

  // Kahn's algorithm over the nodes; ONNX requires topological order but does not enforce it.
  std::vector<int> topological_order(const onnx::GraphProto& g) {
    std::unordered_map<std::string, int> producer;
    for (int i = 0; i < g.node_size(); ++i) {
      for (const std::string& out : g.node(i).output()) {
        if (out.empty()) continue;
        if (values_.count(out)) {
          throw Error(ErrorCode::kInvalidArgument,
                      node_label(g.node(i), i) + ": output '" + out + "' has the name of a graph input or initializer");
        }
        if (!producer.emplace(out, i).second) {
          throw Error(ErrorCode::kInvalidArgument, node_label(g.node(i), i) + ": output '" + out +
                                                       "' is also produced by " +
                                                       node_label(g.node(producer[out]), producer[out]));
        }
      }
    }
    std::vector<int> pending(g.node_size(), 0);
    std::vector<std::vector<int>> users(g.node_size());
    for (int i = 0; i < g.node_size(); ++i) {
      for (const std::string& in : g.node(i).input()) {
        if (in.empty()) continue;
        if (auto p = producer.find(in); p != producer.end()) {
          ++pending[i];
          users[p->second].push_back(i);
        } else if (!values_.count(in)) {
          throw Error(ErrorCode::kInvalidArgument, node_label(g.node(i), i) + ": input '" + in +
                                                       "' is not defined by any node, input or initializer");
        }
      }
    }
    std::vector<int> order, ready;
    for (int i = g.node_size() - 1; i >= 0; --i)
      if (pending[i] == 0) ready.push_back(i);
    while (!ready.empty()) {
      const int i = ready.back();
      ready.pop_back();
      order.push_back(i);
      for (int u : users[i])
        if (--pending[u] == 0) ready.push_back(u);
    }
    if (order.size() != static_cast<std::size_t>(g.node_size())) {
      std::string cycle;
      for (int i = 0; i < g.node_size(); ++i)
        if (pending[i] > 0) cycle += (cycle.empty() ? "" : ", ") + node_label(g.node(i), i);
      throw Error(ErrorCode::kInvalidArgument, "the graph has a cycle through " + cycle);
    }
    return order;
  }

  std::string node_label(const onnx::NodeProto& n, int index) const {
    const std::string d = normalize_domain(n.domain());
    const auto o = opsets_.find(d);
    return "node '" + (n.name().empty() ? n.op_type() + "_" + std::to_string(index) : n.name()) + "' (" + n.op_type() +
           ", domain '" + domain_label(d) + "'" + (o != opsets_.end() ? ", opset " + std::to_string(o->second) : "") +
           ")";
  }

  void map_node(const onnx::NodeProto& n, int index) {
    const std::string label = node_label(n, index);
    try {
      const std::string d = normalize_domain(n.domain());
      const auto o = opsets_.find(d);
      if (o == opsets_.end()) {
        throw Error(ErrorCode::kUnsupported, "the model does not import domain '" + domain_label(d) + "'");
      }
      const OpEntry* entry = find_op(d, n.op_type());
      if (!entry) {
        std::string known;
        for (const OpEntry& e : op_table())
          if (e.domain == d) known += (known.empty() ? "" : " ") + std::string(e.op_type);
        throw Error(ErrorCode::kUnsupported,
                    "op '" + n.op_type() + "' is not supported in domain '" + domain_label(d) + "' (" +
                        (known.empty() ? "quarks has no ops in this domain; it imports ai.onnx and ai.quarks"
                                       : "supported: " + known) +
                        ")");
      }
      const std::string name = unique_name(n.name().empty() ? n.op_type() + "_" + std::to_string(index) : n.name());
      bool all_const = n.input_size() > 0;
      for (const std::string& in : n.input()) all_const = all_const && (in.empty() || values_.at(in).is_const);
      if (all_const) {
        NodeContext ctx(n, name, o->second, state_, base_dir_);
        if (!(entry->fold && entry->fold(ctx))) fold_with_engine(n, *entry, name, o->second);
      } else {
        NodeContext ctx(n, name, o->second, state_, base_dir_);
        entry->map(ctx);
      }
      for (int i = 0; i < n.output_size(); ++i) {
        const std::string& out = n.output(i);
        if (!out.empty() && !values_.count(out)) {
          throw Error(ErrorCode::kInvalidArgument,
                      "output " + std::to_string(i) + " '" + out + "' is not produced: the op has fewer outputs");
        }
      }
    } catch (const Error& e) {
      throw Error(e.code(), label + ": " + e.what());
    }
  }

  // Runs the node's quarks mapping on its constant inputs in a scratch graph and keeps the results.
  void fold_with_engine(const onnx::NodeProto& n, const OpEntry& entry, const std::string& name, int opset) {
    GraphBuilder scratch;
    std::map<std::string, ImportedValue> local;
    for (const std::string& in : n.input()) {
      if (in.empty()) continue;
      ImportedValue v = values_.at(in);
      v.value.reset();
      local[in] = std::move(v);
    }
    std::set<std::string> scratch_names;
    BuildState st;
    st.builder = &scratch;
    st.values = &local;
    st.unique_name = [&](const std::string& base) {
      std::string s = base;
      for (int k = 1; !scratch_names.insert(s).second; ++k) s = base + "_" + std::to_string(k);
      return s;
    };
    NodeContext ctx(n, st.unique_name(name), opset, st, base_dir_);
    entry.map(ctx);
    std::vector<std::string> runtime_outs;
    for (int i = 0; i < n.output_size(); ++i) {
      const std::string& out = n.output(i);
      if (out.empty()) continue;
      auto it = local.find(out);
      if (it == local.end()) {
        throw Error(ErrorCode::kInvalidArgument,
                    "output " + std::to_string(i) + " '" + out + "' is not produced: the op has fewer outputs");
      }
      if (it->second.is_const) {
        values_[out] = it->second;
        values_[out].value.reset();
      } else {
        // Session::run allocates its outputs: bound them before anything runs.
        std::vector<std::int64_t> dims;
        for (const Dim& d : scratch.dims(*it->second.value)) dims.push_back(d.value);
        const std::size_t esize = dtype_size(scratch.dtype(*it->second.value));
        if (checked_numel(dims, static_cast<std::int64_t>(kMaxFoldedBytes / esize)) < 0) {
          throw Error(ErrorCode::kResourceExhausted,
                      "folding output '" + out + "' of shape " + scratch.shape_string(*it->second.value) +
                          " would take more than " + std::to_string(kMaxFoldedBytes) + " bytes");
        }
        scratch.output(out, *it->second.value);
        runtime_outs.push_back(out);
      }
    }
    if (runtime_outs.empty()) return;
    CompileOptions copt;
    copt.threads = 1;
    copt.max_arena_bytes = kMaxFoldedBytes;  // a hostile Expand or ConstantOfShape chain must not allocate terabytes
    Session session(compile(scratch.build(), copt));
    std::map<std::string, Tensor> results = session.run(std::span<const NamedInput>{});
    for (const std::string& out : runtime_outs) {
      ImportedValue v;
      v.is_const = true;
      v.data = results.at(out);
      values_[out] = std::move(v);
    }
  }

  void declare_outputs(const onnx::GraphProto& g) {
    if (g.output_size() == 0) throw Error(ErrorCode::kInvalidArgument, "the graph has no outputs");
    for (const auto& out : g.output()) {
      auto it = values_.find(out.name());
      if (it == values_.end()) {
        throw Error(ErrorCode::kInvalidArgument, "graph output '" + out.name() + "' is not produced by any node");
      }
      ImportedValue& v = it->second;
      if (!v.value) {
        if (v.has_symbols()) {
          throw Error(ErrorCode::kUnsupported, "graph output '" + out.name() +
                                                   "' is a shape that depends on symbolic input dims; give concrete "
                                                   "input shapes (OnnxImportOptions::input_shapes)");
        }
        v.value = builder_.constant(state_.value_name(out.name()), v.data);
      }
      builder_.output(out.name(), *v.value);
    }
  }

  const OnnxImportOptions& options_;
  std::filesystem::path base_dir_;
  GraphBuilder builder_;
  std::map<std::string, ImportedValue> values_;
  std::set<std::string> used_names_;  ///< every name given out or reserved
  std::set<std::string> claimed_;     ///< reserved value names already used in the builder
  std::map<std::string, int> opsets_;
  BuildState state_;
};

}  // namespace
}  // namespace onnx_import

Graph load_onnx_bytes(std::span<const std::byte> bytes, const OnnxImportOptions& options,
                      const std::filesystem::path& external_data_dir) {
  if (bytes.size() > options.max_model_bytes || bytes.size() > static_cast<std::size_t>(INT32_MAX)) {
    throw Error(ErrorCode::kResourceExhausted,
                "the model has " + std::to_string(bytes.size()) + " bytes, above the limit of " +
                    std::to_string(std::min<std::size_t>(options.max_model_bytes, INT32_MAX)));
  }
  onnx::ModelProto model;
  if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    throw Error(ErrorCode::kInvalidArgument, "not a valid ONNX model: the protobuf does not parse");
  }
  if (!model.has_graph()) throw Error(ErrorCode::kInvalidArgument, "not a valid ONNX model: it has no graph");
  return onnx_import::Importer(options, external_data_dir).run(model);
}

Graph load_onnx(const std::filesystem::path& path, const OnnxImportOptions& options) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(ErrorCode::kNotFound, "cannot read ONNX model '" + path.string() + "': " + ec.message());
  if (size > options.max_model_bytes) {
    throw Error(ErrorCode::kResourceExhausted, path.string() + ": the model has " + std::to_string(size) +
                                                   " bytes, above the limit of " +
                                                   std::to_string(options.max_model_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  std::string data(size, '\0');
  if (!in.read(data.data(), static_cast<std::streamsize>(size))) {
    throw Error(ErrorCode::kNotFound, "cannot read ONNX model '" + path.string() + "'");
  }
  try {
    return load_onnx_bytes(std::as_bytes(std::span(data)), options,
                           path.parent_path().empty() ? "." : path.parent_path());
  } catch (const Error& e) {
    throw Error(e.code(), path.filename().string() + ": " + e.what());
  }
}

Tensor load_onnx_tensor(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kNotFound, "cannot open tensor file '" + path.string() + "'");
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  onnx::TensorProto proto;
  if (!proto.ParseFromString(data)) {
    throw Error(ErrorCode::kInvalidArgument, path.string() + ": not a serialized onnx.TensorProto");
  }
  return onnx_import::tensor_from_proto(proto, path.filename().string(), path.parent_path());
}

}  // namespace quarks
