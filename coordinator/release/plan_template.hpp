// The release plan template (发布方案, procedure §6.2.1) that
// `fabu release template` prints: a complete plan in YAML with a comment above
// every field saying what it is, its default and the procedure § it serves
// (docs/plan.md lists the same fields). Placeholders are written `<...>` inside
// a quoted scalar, one per field line, saying what to put there; the rest
// (category, the go-live plan's waves, thresholds and durations) are working
// example values.
//
// The comments and placeholders come in English or in Chinese with the
// procedure's own terms; the field names are the schema and never change.
// The emergency variant (category `emergency`) has the same fields: the plan
// parser waives none of them. Its comments say what differs later in the
// workflow (the test waiver, the freeze override) and its go-live plan waits
// at a gate after each wave (procedure §4.5).
//
// Pure and thread-safe.
#pragma once

#include <string>

#include "coordinator/release/record_render.hpp"

namespace fabu::coordinator::release {

enum class PlanTemplateVariant {
  kNormal,
  kEmergency,  // category "emergency"
};

// The template text: YAML, ending in a newline.
std::string PlanTemplate(Lang lang, PlanTemplateVariant variant);

}  // namespace fabu::coordinator::release
