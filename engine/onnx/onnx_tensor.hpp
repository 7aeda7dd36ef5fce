// onnx.TensorProto -> quarks::Tensor, with every size checked against the data actually present.
#pragma once

#include <filesystem>
#include <string>

#include "quarks/tensor.hpp"

namespace onnx {
class TensorProto;
}

namespace quarks::onnx_import {

/// Converts `proto` (float, double -> f32, int64, int32/int16/int8/uint8 -> i64, bool). `what` names
/// the tensor in errors ("initializer 'w'"). External data is read from files under `base_dir`
/// (refused when base_dir is empty) and must stay inside it.
Tensor tensor_from_proto(const onnx::TensorProto& proto, const std::string& what,
                         const std::filesystem::path& base_dir);

/// "FLOAT", "INT64", ... for an onnx.TensorProto.DataType value.
std::string onnx_dtype_name(int data_type);

}  // namespace quarks::onnx_import
