// What a go-live check on metrics reads from elsewhere
// (coordinator/release/metric_check.hpp): Prometheus's answer to an instant
// query and an http check's JSON document, judged by a check of each kind.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "coordinator/release/metric_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  namespace rel = fabu::coordinator::release;
  static const rel::MetricCheck prometheus = [] {
    rel::MetricCheck c;
    c.name = "error-ratio";
    c.condition = *rel::ParseCheckCondition("< 0.05");
    c.interval_seconds = 1;
    return c;
  }();
  static const rel::MetricCheck http = [] {
    rel::MetricCheck c = prometheus;
    c.kind = rel::MetricCheck::Kind::kHttp;
    c.url = "http://127.0.0.1/stats";
    c.selector = "$.sites[1].errors.ratio";
    return c;
  }();
  const rel::Measurement a = rel::JudgePrometheusAnswer(prometheus, text);
  const rel::Measurement b = rel::JudgeHttpAnswer(http, text);
  // A measurement's detail is stored and shown: bounded, whatever came in.
  if (a.detail.size() > 400 || b.detail.size() > 400) __builtin_trap();
  (void)rel::ParseCheckCondition(text);
  return 0;
}
