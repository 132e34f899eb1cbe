// Text that came from outside the agent (a hook's output, a file name, a
// coordinator's answer) made fit for JSON and for the log.
//
// nlohmann::json throws when it serializes a string that is not valid UTF-8,
// so every foreign byte string is passed through ValidUtf8 before it goes
// into an event, and output tails are cut on character boundaries
// (docs/agent.md).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace fabu::agent {

// U+FFFD REPLACEMENT CHARACTER, as UTF-8.
inline constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";

// `text` with every ill-formed sequence (a stray continuation byte, a
// character cut short, an overlong form, a surrogate, a code point above
// U+10FFFF) replaced by one U+FFFD per maximal ill-formed subpart, as the
// Unicode standard recommends. Valid input is returned unchanged.
std::string ValidUtf8(std::string_view text);

// `text` without the continuation bytes (at most 3) a character cut at its
// front left there.
std::string_view DropCutCharacter(std::string_view text);

// The last `limit` bytes of `text` at most, starting on a character boundary:
// the continuation bytes of a character cut at the front are dropped (at
// most 3, so bytes that are no UTF-8 at all are still kept for ValidUtf8 to
// replace).
std::string_view Utf8Tail(std::string_view text, std::size_t limit);

// The last `limit` bytes of `text` at most, valid UTF-8, whole characters.
std::string ValidUtf8Tail(std::string_view text, std::size_t limit);

// `text` as a JSON string literal (quotes included, control characters
// escaped, ill-formed UTF-8 replaced), cut to about `limit` bytes: how a
// message names a value received from the network.
std::string Quoted(std::string_view text, std::size_t limit = 160);

}  // namespace fabu::agent
