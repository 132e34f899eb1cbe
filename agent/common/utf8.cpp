#include "agent/common/utf8.hpp"

#include <nlohmann/json.hpp>

namespace fabu::agent {

std::string ValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    // The length of the sequence `c` starts and the range allowed for its
    // second byte (RFC 3629, section 4).
    std::size_t length = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c == 0xE0) {
      length = 3;
      low = 0xA0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
      length = 3;
    } else if (c == 0xED) {
      length = 3;
      high = 0x9F;  // no surrogates
    } else if (c == 0xF0) {
      length = 4;
      low = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
      length = 4;
    } else if (c == 0xF4) {
      length = 4;
      high = 0x8F;  // nothing above U+10FFFF
    } else {
      out.append(kReplacementCharacter);  // a continuation byte, C0, C1 or F5..FF
      ++i;
      continue;
    }
    std::size_t good = 1;
    for (; good < length && i + good < n; ++good) {
      const auto d = static_cast<unsigned char>(text[i + good]);
      const bool fits = good == 1 ? d >= low && d <= high : d >= 0x80 && d <= 0xBF;
      if (!fits) break;
    }
    if (good == length) {
      out.append(text.substr(i, length));
    } else {
      out.append(kReplacementCharacter);
    }
    i += good;
  }
  return out;
}

std::string_view DropCutCharacter(std::string_view text) {
  std::size_t start = 0;
  while (start < 3 && start < text.size() &&
         (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) {
    ++start;
  }
  return text.substr(start);
}

std::string_view Utf8Tail(std::string_view text, std::size_t limit) {
  if (text.size() <= limit) return text;
  return DropCutCharacter(text.substr(text.size() - limit));
}

std::string ValidUtf8Tail(std::string_view text, std::size_t limit) {
  // Replacing a byte may make the text longer: cut again (now on a
  // boundary for sure, the text being valid).
  std::string valid = ValidUtf8(Utf8Tail(text, limit));
  if (valid.size() > limit) valid = std::string(Utf8Tail(valid, limit));
  return valid;
}

std::string Quoted(std::string_view text, std::size_t limit) {
  std::string valid = ValidUtf8(text.substr(0, limit));
  if (text.size() > limit) valid.append("...");
  return nlohmann::json(valid).dump();
}

}  // namespace fabu::agent
