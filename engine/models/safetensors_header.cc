// The safetensors header reader: a SAX handler on nlohmann-json's parser that checks each entry and
// builds its record while the text is read. No JSON tree is built, so a hostile header costs memory
// only for the tensors it declares (a value nested where no safetensors header nests is skipped, a
// shape longer than Shape::kMaxRank is refused at its ninth dim), and duplicate keys — which a JSON
// tree would merge silently, keeping the last — are seen.
#include "engine/models/safetensors_header.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <set>

namespace quarks::models::detail {
namespace {

using json = nlohmann::json;

struct DTypeName {
  std::string_view name;
  std::size_t bytes;
};

// The dtypes of the safetensors format (huggingface/safetensors, Dtype) that are whole bytes.
constexpr DTypeName kDTypes[] = {{"F64", 8}, {"F32", 4}, {"F16", 2},  {"BF16", 2},    {"I64", 8},
                                 {"I32", 4}, {"I16", 2}, {"I8", 1},   {"U64", 8},     {"U32", 4},
                                 {"U16", 2}, {"U8", 1},  {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};

std::string known_dtypes() {
  std::string out;
  for (const DTypeName& d : kDTypes) out += (out.empty() ? "" : " ") + std::string(d.name);
  return out;
}

// A JSON value as the checks see it: what it is (for messages) and, for non-negative integers and
// strings, its value. Numbers keep the text they were written as.
struct Value {
  enum Kind { kNull, kBool, kInteger, kNegative, kFraction, kString, kObject, kArray } kind;
  std::uint64_t integer = 0;
  std::string_view text;
};

std::string describe(const Value& v) {
  switch (v.kind) {
    case Value::kNull: return "null";
    case Value::kBool: return "a boolean";
    case Value::kInteger: return "the integer " + std::to_string(v.integer);
    case Value::kNegative: return "the negative number " + std::string(v.text);
    case Value::kFraction: return "the number " + std::string(v.text);
    case Value::kString: return "the string " + in_quotes(v.text);
    case Value::kObject: return "an object";
    case Value::kArray: return "an array";
  }
  return "?";
}

// The keys of an entry that the format defines.
enum Field { kDtype, kShape, kOffsets, kOther };
constexpr const char* kFieldNames[] = {"dtype", "shape", "data_offsets"};

Field field_of(std::string_view key) {
  if (key == "dtype") return kDtype;
  if (key == "shape") return kShape;
  if (key == "data_offsets") return kOffsets;
  return kOther;
}

// Depth (containers open around an event): 0 the header object, 1 its values (entries and
// "__metadata__"), 2 an entry's values and the metadata strings, 3 the elements of shape and
// data_offsets. Deeper values can only be inside keys the format does not define, and are skipped.
class HeaderReader final : public nlohmann::json_sax<json> {
 public:
  HeaderReader(const std::string& file, std::uint64_t data_size) : file_(file), data_size_(data_size) {}

  Header take() { return std::move(header_); }

  bool null() override { return scalar({Value::kNull}); }
  bool boolean(bool) override { return scalar({Value::kBool}); }
  bool number_integer(number_integer_t v) override {
    // The lexer reports only numbers written with a minus sign here; "-0" is 0.
    return v == 0 ? scalar({Value::kInteger, 0}) : scalar({Value::kNegative, 0, std::to_string(v)});
  }
  bool number_unsigned(number_unsigned_t v) override { return scalar({Value::kInteger, v}); }
  bool number_float(number_float_t, const string_t& text) override { return scalar({Value::kFraction, 0, text}); }
  bool string(string_t& s) override { return scalar({Value::kString, 0, s}); }
  bool binary(binary_t&) override { return scalar({Value::kNull}); }  // not produced by JSON text
  bool start_object(std::size_t) override { return open({Value::kObject}); }
  bool start_array(std::size_t) override { return open({Value::kArray}); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool key(string_t& k) override;
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    fail(ErrorCode::kInvalidArgument, file_, std::string("header is not valid JSON: ") + e.what());
  }

 private:
  [[noreturn]] void fail_tensor(const std::string& message, ErrorCode code = ErrorCode::kInvalidArgument) const {
    fail(code, file_, "tensor " + in_quotes(name_) + ": " + message);
  }
  [[noreturn]] void not_an_object(const Value& v) const {
    if (in_metadata_) fail(ErrorCode::kInvalidArgument, file_, "'__metadata__' is " + describe(v) + ", not an object");
    fail_tensor("the entry is " + describe(v) + ", not an object");
  }
  [[noreturn]] void wrong_type(const char* wanted, const Value& v) const {
    fail_tensor(std::string("'") + kFieldNames[field_] + "' is " + describe(v) + ", not " + wanted);
  }
  [[noreturn]] void metadata_not_string(const Value& v) const {
    fail(ErrorCode::kInvalidArgument, file_,
         "'__metadata__' value of " + in_quotes(meta_key_) + " is " + describe(v) + ", not a string");
  }

  bool scalar(const Value& v);
  bool open(const Value& v);
  bool close();
  void element(const Value& v);
  void finish_entry();

  const std::string& file_;
  const std::uint64_t data_size_;
  Header header_;
  int depth_ = 0;
  std::string name_;  // the current key of the header object
  bool in_metadata_ = false, seen_metadata_ = false;
  std::set<std::string, std::less<>> names_;
  std::string meta_key_;
  // The entry being read.
  Field field_ = kOther;
  bool has_[3] = {};
  std::string dtype_;
  Shape shape_;
  std::uint64_t offsets_[2] = {};
  int offset_count_ = 0;
};

bool HeaderReader::key(string_t& k) {
  if (depth_ == 1) {
    if (k == "__metadata__") {
      if (seen_metadata_) fail(ErrorCode::kInvalidArgument, file_, "'__metadata__' appears twice");
      seen_metadata_ = true;
      in_metadata_ = true;
    } else if (!names_.insert(k).second) {
      fail(ErrorCode::kInvalidArgument, file_, "tensor " + in_quotes(k) + " appears twice in the header");
    }
    name_ = k;
    std::fill(std::begin(has_), std::end(has_), false);
    shape_ = Shape();
    offset_count_ = 0;
  } else if (depth_ == 2 && in_metadata_) {
    if (header_.metadata.count(k)) {
      fail(ErrorCode::kInvalidArgument, file_, "'__metadata__' has the key " + in_quotes(k) + " twice");
    }
    meta_key_ = k;
  } else if (depth_ == 2) {
    field_ = field_of(k);
    if (field_ != kOther) {
      if (has_[field_]) fail_tensor(std::string("the key '") + kFieldNames[field_] + "' appears twice");
      has_[field_] = true;
    }
  }
  return true;
}

bool HeaderReader::scalar(const Value& v) {
  switch (depth_) {
    case 0: fail(ErrorCode::kInvalidArgument, file_, "header is " + describe(v) + ", not a JSON object");
    case 1: not_an_object(v);
    case 2:
      if (in_metadata_) {
        if (v.kind != Value::kString) metadata_not_string(v);
        header_.metadata.emplace(meta_key_, v.text);
      } else if (field_ == kDtype) {
        if (v.kind != Value::kString) wrong_type("a string", v);
        dtype_ = v.text;
      } else if (field_ != kOther) {
        wrong_type("an array of integers", v);
      }
      break;
    case 3:
      if (!in_metadata_ && (field_ == kShape || field_ == kOffsets)) element(v);
      break;
    default: break;
  }
  return true;
}

bool HeaderReader::open(const Value& v) {
  switch (depth_) {
    case 0:
      if (v.kind != Value::kObject) fail(ErrorCode::kInvalidArgument, file_, "header is an array, not a JSON object");
      break;
    case 1:
      if (v.kind != Value::kObject) not_an_object(v);
      break;
    case 2:
      if (in_metadata_) metadata_not_string(v);
      if (field_ == kDtype) wrong_type("a string", v);
      if (field_ != kOther && v.kind == Value::kObject) wrong_type("an array of integers", v);
      break;
    case 3:
      if (!in_metadata_ && (field_ == kShape || field_ == kOffsets)) element(v);
      break;
    default: break;
  }
  ++depth_;
  return true;
}

bool HeaderReader::close() {
  --depth_;
  if (depth_ == 1) {
    if (in_metadata_) {
      in_metadata_ = false;
    } else {
      finish_entry();
    }
  } else if (depth_ == 2 && !in_metadata_ && field_ == kOffsets && offset_count_ != 2) {
    fail_tensor("'data_offsets' holds " + std::to_string(offset_count_) + " numbers, not two");
  }
  return true;
}

// An element of "shape" or "data_offsets".
void HeaderReader::element(const Value& v) {
  if (field_ == kShape) {
    const std::string dim = "dim " + std::to_string(shape_.rank()) + " of 'shape'";
    if (shape_.rank() == Shape::kMaxRank) {
      fail_tensor("'shape' has more than " + std::to_string(Shape::kMaxRank) + " dims (the maximum rank)");
    }
    if (v.kind == Value::kNegative) fail_tensor(dim + " is " + std::string(v.text) + "; dims must be >= 0");
    if (v.kind != Value::kInteger) fail_tensor(dim + " is " + describe(v) + ", not an integer");
    if (v.integer > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      fail_tensor(dim + " is " + std::to_string(v.integer) + ", above 2^63 - 1");
    }
    shape_.push_back(static_cast<std::int64_t>(v.integer));
  } else {
    if (offset_count_ == 2) fail_tensor("'data_offsets' holds more than two numbers");
    if (v.kind != Value::kInteger) fail_tensor("'data_offsets' holds " + describe(v) + ", not an integer >= 0");
    offsets_[offset_count_++] = v.integer;
  }
}

void HeaderReader::finish_entry() {
  for (int f : {kDtype, kShape, kOffsets}) {
    if (!has_[f]) fail_tensor(std::string("the entry has no '") + kFieldNames[f] + "'");
  }
  const std::size_t element_bytes = dtype_bytes(dtype_);
  if (element_bytes == 0) {
    fail_tensor("dtype " + in_quotes(dtype_) + " is not one of " + known_dtypes(), ErrorCode::kUnsupported);
  }
  const std::uint64_t begin = offsets_[0], end = offsets_[1];
  const std::string range = "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "]";
  if (begin > end) fail_tensor(range + " end before they begin");
  if (end > data_size_) {
    fail_tensor(range + " run past the end of the data section (" + std::to_string(data_size_) + " bytes)");
  }
  // The product, in the order of the dims, must fit in int64 (as Shape::numel computes it), and so
  // must the bytes: [2^40, 2^40] of F32 does not wrap around to a small size.
  std::uint64_t count = 1, bytes = 0;
  bool overflow = false;
  for (std::int64_t d : shape_)
    overflow = overflow || __builtin_mul_overflow(count, static_cast<std::uint64_t>(d), &count);
  overflow = overflow || __builtin_mul_overflow(count, element_bytes, &bytes) ||
             bytes > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  const std::string needs = "shape " + shape_.to_string() + " of " + dtype_ + " needs ";
  if (overflow) fail_tensor(needs + "more than 2^63 bytes but " + range + " hold " + std::to_string(end - begin));
  if (bytes != end - begin) {
    fail_tensor(needs + std::to_string(bytes) + " bytes but " + range + " hold " + std::to_string(end - begin));
  }
  HeaderEntry entry;
  entry.tensor.name = name_;
  entry.tensor.dtype = dtype_;
  entry.tensor.shape = shape_;
  entry.tensor.file = file_;
  entry.begin = begin;
  entry.end = end;
  header_.tensors.push_back(std::move(entry));
}

// No two tensors may share a byte of the data section (empty ranges share none).
void check_overlaps(const Header& header, const std::string& file) {
  std::vector<const HeaderEntry*> order;
  for (const HeaderEntry& e : header.tensors)
    if (e.begin != e.end) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const HeaderEntry* a, const HeaderEntry* b) {
    if (a->begin != b->begin) return a->begin < b->begin;
    return a->end != b->end ? a->end < b->end : a->tensor.name < b->tensor.name;
  });
  const HeaderEntry* reach = nullptr;  // the range that ends last among those before
  for (const HeaderEntry* e : order) {
    if (reach && e->begin < reach->end) {
      auto range = [](const HeaderEntry* x) {
        return in_quotes(x->tensor.name) + " [" + std::to_string(x->begin) + ", " + std::to_string(x->end) + "]";
      };
      fail(ErrorCode::kInvalidArgument, file, "the data of tensors " + range(reach) + " and " + range(e) + " overlap");
    }
    if (!reach || e->end > reach->end) reach = e;
  }
}

}  // namespace

std::size_t dtype_bytes(std::string_view dtype) noexcept {
  for (const DTypeName& d : kDTypes)
    if (d.name == dtype) return d.bytes;
  return 0;
}

std::string in_quotes(std::string_view text) {
  constexpr std::size_t kMaxShown = 120;
  std::size_t shown = std::min(text.size(), kMaxShown);
  // Cut at a character boundary, not inside a UTF-8 sequence.
  while (shown < text.size() && shown > 0 && (static_cast<unsigned char>(text[shown]) & 0xc0) == 0x80) --shown;
  std::string out = "'";
  for (std::size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + (shown < text.size() ? "'..." : "'");
}

void fail(ErrorCode code, const std::string& file, const std::string& message) {
  throw Error(code, "file " + file + ": " + message);
}

Header parse_header(std::string_view text, const std::string& file, std::uint64_t data_size) {
  HeaderReader reader(file, data_size);
  json::sax_parse(text.begin(), text.end(), &reader);
  Header header = reader.take();
  check_overlaps(header, file);
  return header;
}

}  // namespace quarks::models::detail
