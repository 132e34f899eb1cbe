#include "coordinator/common/clock.hpp"

#include <fmt/format.h>
#include <time.h>

#include <chrono>

namespace fabu::coordinator {

std::string NowUtc() {
  const auto now = std::chrono::system_clock::now();
  const auto second = std::chrono::floor<std::chrono::seconds>(now);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now - second).count();
  // gmtime_r and fmt cost more than the rest of an audit entry's fields (a
  // wave writes thousands a second): the "YYYY-MM-DDTHH:MM:SS" prefix is
  // formatted once per second on each thread.
  struct Prefix {
    std::chrono::sys_seconds second = std::chrono::sys_seconds::min();
    std::string text;
  };
  thread_local Prefix prefix;
  if (second != prefix.second) {
    const time_t seconds = static_cast<time_t>(second.time_since_epoch().count());
    struct tm utc {};
    gmtime_r(&seconds, &utc);
    prefix.text = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", utc.tm_year + 1900,
                              utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
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
