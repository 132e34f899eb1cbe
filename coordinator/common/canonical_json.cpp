#include "coordinator/common/canonical_json.hpp"

#include <stdexcept>

namespace fabu::coordinator {
namespace {

// True when nlohmann would write `text` between quotes unchanged: printable
// ASCII but for the two characters JSON escapes.
bool IsPlain(std::string_view text) {
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte > 0x7E || c == '"' || c == '\\') return false;
  }
  return true;
}

}  // namespace

CanonicalJsonWriter::CanonicalJsonWriter(std::size_t capacity) {
  text_.reserve(capacity);
  text_.push_back('{');
}

void CanonicalJsonWriter::Key(std::string_view key) {
  if (!IsPlain(key)) {
    const std::string shown =
        nlohmann::json(key).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    throw std::logic_error("canonical JSON: key " + shown + " needs escapes");
  }
  if (!empty_) {
    const std::string_view last(text_.data() + last_key_at_, last_key_size_);
    if (!(last < key)) {
      throw std::logic_error("canonical JSON: key \"" + std::string(key) +
                             "\" must come before \"" + std::string(last) +
                             "\" (keys in ascending byte order, each once)");
    }
    text_.push_back(',');
  }
  empty_ = false;
  text_.push_back('"');
  last_key_at_ = text_.size();
  last_key_size_ = key.size();
  text_.append(key);
  text_.append("\":");
}

void CanonicalJsonWriter::String(std::string_view key, std::string_view value) {
  Key(key);
  if (IsPlain(value)) {
    text_.push_back('"');
    text_.append(value);
    text_.push_back('"');
  } else {
    text_.append(nlohmann::json(value).dump());
  }
}

void CanonicalJsonWriter::Bool(std::string_view key, bool value) {
  Key(key);
  text_.append(value ? "true" : "false");
}

void CanonicalJsonWriter::Null(std::string_view key) {
  Key(key);
  text_.append("null");
}

void CanonicalJsonWriter::Json(std::string_view key, const nlohmann::json& value) {
  Key(key);
  text_.append(value.dump());
}

std::string CanonicalJsonWriter::Finish() {
  text_.push_back('}');
  return std::move(text_);
}

}  // namespace fabu::coordinator
