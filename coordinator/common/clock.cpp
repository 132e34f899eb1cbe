#include "coordinator/common/clock.hpp"

#include <chrono>

#include "protocol/timestamp.hpp"

namespace fabu::coordinator {

std::string NowUtc() {
  const auto now = std::chrono::system_clock::now();
  const auto second = std::chrono::floor<std::chrono::seconds>(now);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now - second).count();
  // Formatting the date and time costs more than the rest of an audit
  // entry's fields (a wave writes thousands a second): the
  // "YYYY-MM-DDTHH:MM:SS" prefix is formatted once per second on each thread.
  struct Prefix {
    std::chrono::sys_seconds second = std::chrono::sys_seconds::min();
    std::string text;
  };
  thread_local Prefix prefix;
  if (second != prefix.second) {
    prefix.text = protocol::FormatRfc3339Utc(second.time_since_epoch().count());
    prefix.text.pop_back();  // its 'Z': the milliseconds come first
    prefix.second = second;
  }
  std::string out;
  out.reserve(prefix.text.size() + 5);
  out.append(prefix.text);
  out.push_back('.');
  out.push_back(static_cast<char>('0' + millis / 100));
  out.push_back(static_cast<char>('0' + millis / 10 % 10));
  out.push_back(static_cast<char>('0' + millis % 10));
  out.push_back('Z');
  return out;
}

}  // namespace fabu::coordinator
