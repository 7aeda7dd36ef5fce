// Building ONNX models in tests with the onnx protobuf classes (link onnx_proto): initializers,
// attributes, and OnnxModel, a ModelProto under construction with graph inputs, nodes and outputs.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace quarks::testing {

using onnx::AttributeProto;
using onnx::TensorProto;

inline TensorProto f32_tensor(const std::string& name, const std::vector<std::int64_t>& dims,
                              const std::vector<float>& v) {
  TensorProto t;
  t.set_name(name);
  t.set_data_type(TensorProto::FLOAT);
  for (std::int64_t d : dims) t.add_dims(d);
  t.set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
  return t;
}

inline TensorProto i64_tensor(const std::string& name, const std::vector<std::int64_t>& dims,
                              const std::vector<std::int64_t>& v) {
  TensorProto t;
  t.set_name(name);
  t.set_data_type(TensorProto::INT64);
  for (std::int64_t d : dims) t.add_dims(d);
  for (std::int64_t x : v) t.add_int64_data(x);
  return t;
}

inline void set_attr_int(onnx::NodeProto& n, const std::string& name, std::int64_t v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(AttributeProto::INT);
  a->set_i(v);
}

inline void set_attr_float(onnx::NodeProto& n, const std::string& name, float v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(AttributeProto::FLOAT);
  a->set_f(v);
}

inline void set_attr_ints(onnx::NodeProto& n, const std::string& name, const std::vector<std::int64_t>& v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(AttributeProto::INTS);
  for (std::int64_t x : v) a->add_ints(x);
}

inline void set_attr_tensor(onnx::NodeProto& n, const std::string& name, const TensorProto& t) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(AttributeProto::TENSOR);
  *a->mutable_t() = t;
}

// A model under construction: opset `opset` of the default domain, IR version 8.
class OnnxModel {
 public:
  explicit OnnxModel(int opset = 17) {
    model_.set_ir_version(8);
    model_.set_producer_name("quarks-tests");
    set_opset("", opset);
    model_.mutable_graph()->set_name("test");
  }

  void set_opset(const std::string& domain, int version) {
    for (auto& o : *model_.mutable_opset_import()) {
      if (o.domain() == domain) return o.set_version(version);
    }
    auto* o = model_.add_opset_import();
    o->set_domain(domain);
    o->set_version(version);
  }

  onnx::GraphProto& graph() { return *model_.mutable_graph(); }
  onnx::ModelProto& proto() { return model_; }

  /// A graph input; dims < 0 are symbolic ("d0", "d1", ...); no shape at all when dims is nullopt.
  onnx::ValueInfoProto& input(const std::string& name, std::optional<std::vector<std::int64_t>> dims,
                              int elem_type = TensorProto::FLOAT) {
    auto* in = graph().add_input();
    in->set_name(name);
    auto* tt = in->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(elem_type);
    if (dims) {
      auto* shape = tt->mutable_shape();
      for (std::size_t i = 0; i < dims->size(); ++i) {
        if ((*dims)[i] >= 0)
          shape->add_dim()->set_dim_value((*dims)[i]);
        else
          shape->add_dim()->set_dim_param("d" + std::to_string(i));
      }
    }
    return *in;
  }

  void output(const std::string& name) {
    auto* out = graph().add_output();
    out->set_name(name);
    out->mutable_type()->mutable_tensor_type()->set_elem_type(TensorProto::FLOAT);
  }

  onnx::NodeProto& node(const std::string& op, const std::string& name, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs, const std::string& domain = "") {
    auto* n = graph().add_node();
    n->set_op_type(op);
    n->set_name(name);
    if (!domain.empty()) n->set_domain(domain);
    for (const auto& s : inputs) n->add_input(s);
    for (const auto& s : outputs) n->add_output(s);
    return *n;
  }

  TensorProto& initializer(const TensorProto& t) { return *graph().add_initializer() = t; }

  std::string bytes() const { return model_.SerializeAsString(); }

 private:
  onnx::ModelProto model_;
};

// x [2,3] + w -> y with the given initializer w.
inline OnnxModel add_initializer_model(const TensorProto& w) {
  OnnxModel m;
  m.input("x", std::vector<std::int64_t>{2, 3});
  m.initializer(w);
  m.node("Add", "add", {"x", w.name()}, {"y"});
  m.output("y");
  return m;
}

}  // namespace quarks::testing
