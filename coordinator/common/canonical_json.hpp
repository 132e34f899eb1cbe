// Writes one JSON object as nlohmann::json::dump() would write it (compact,
// keys in byte order, UTF-8 left as is), without building the json: for the
// texts that are hashed many times a second (the audit chain, digests of
// deployments). The bytes must be exactly nlohmann's, or old audit chains
// stop verifying.
//
// Keys are added in strictly ascending byte order, the order of
// nlohmann's std::map; a key out of order, repeated, or needing escapes
// throws std::logic_error (a programming error, found by any test that
// writes the object). A string value is copied as is when every byte is
// printable ASCII other than '"' and '\'; any other string is written by
// nlohmann, so escapes are its own and invalid UTF-8 throws its
// json::type_error, as dump() does.
//
// Not thread-safe; one writer per object.
#pragma once

#include <charconv>
#include <concepts>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace fabu::coordinator {

class CanonicalJsonWriter {
 public:
  // `capacity`: the expected length of the text, reserved up front.
  explicit CanonicalJsonWriter(std::size_t capacity = 256);

  void String(std::string_view key, std::string_view value);
  template <std::integral T>
  requires(!std::same_as<T, bool>) void Number(std::string_view key, T value) {
    Key(key);
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
    text_.append(digits, end);
  }
  void Bool(std::string_view key, bool value);
  template <typename T>
  void Bool(std::string_view key, T value) = delete;  // no pointer or number as a bool
  void Null(std::string_view key);
  // Any other value, written by nlohmann.
  void Json(std::string_view key, const nlohmann::json& value);

  // Closes the object and hands over its text; the writer is spent.
  std::string Finish();

 private:
  // Writes `,"key":` (no comma before the first), checking the order.
  void Key(std::string_view key);

  std::string text_;
  std::size_t last_key_at_ = 0;  // where the previous key's bytes start in text_
  std::size_t last_key_size_ = 0;
  bool empty_ = true;
};

}  // namespace fabu::coordinator
