#include "coordinator/common/clock.hpp"

namespace fabu::coordinator {

protocol::UnixSeconds Clock::Seconds() const {
  return std::chrono::duration_cast<std::chrono::seconds>(Now().time_since_epoch()).count();
}

std::string Clock::Utc() const { return FormatUtcMillis(Now()); }

std::chrono::system_clock::time_point SystemClock::Now() const {
  return std::chrono::system_clock::now();
}

const Clock& WallClock() {
  static const SystemClock clock;
  return clock;
}

std::chrono::system_clock::time_point FakeClock::Now() const {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(millis_.load()));
}

std::string FormatUtcMillis(std::chrono::system_clock::time_point at) {
  const auto second = std::chrono::floor<std::chrono::seconds>(at);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(at - second).count();
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
