// quarks — the one exception type the library throws.
#pragma once

#include <stdexcept>
#include <string>

namespace quarks {

/// What kind of failure an Error reports. Stable: services may switch on it.
enum class ErrorCode {
  kInvalidArgument,    ///< A bad attribute, option or argument (e.g. softmax axis out of range).
  kShapeMismatch,      ///< Shapes that do not fit together (node, op and both shapes are named).
  kTypeMismatch,       ///< A tensor of the wrong element type.
  kNotFound,           ///< An input or output name that the graph does not have.
  kUnsupported,        ///< Valid input that this build cannot run (e.g. bf16 on a CPU without it).
  kResourceExhausted,  ///< A configured memory cap would be exceeded.
  kInternal,           ///< A bug in quarks or in a library it calls; please report it.
};

/// Human-readable name of an ErrorCode ("shape mismatch", ...).
const char* to_string(ErrorCode code) noexcept;

/// Every failure in quarks is reported as this exception. `what()` is a complete sentence naming
/// where the problem is, e.g.
///   node 'ffn.up' (dense): input 'x' has shape [4,512] but the weight expects K=768
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace quarks
