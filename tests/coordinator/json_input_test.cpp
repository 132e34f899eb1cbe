// Strict request bodies: every refusal names the field.
#include "coordinator/common/json_input.hpp"

#include <gtest/gtest.h>

namespace fabu::coordinator {
namespace {

TEST(JsonInputTest, MalformedJsonSaysWhere) {
  auto parsed = ParseJsonBody(R"({"name": )");
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(parsed.error().message().find("not valid JSON (at byte"), std::string::npos)
      << parsed.error().message();
  EXPECT_FALSE(ParseJsonBody(""));
}

TEST(JsonInputTest, UnknownFieldsAreNamedWithTheirPath) {
  auto json = nlohmann::json::parse(R"({"plan": {"purpose": "x", "purpos": "y"}})");
  auto ok = CheckObject(json["plan"], "plan", {{"purpose", JsonType::kString}});
  ASSERT_FALSE(ok);
  EXPECT_EQ(ok.error().message(), "plan.purpos: unknown field (known fields: purpose)");
}

TEST(JsonInputTest, WrongTypesAndMissingFieldsAreNamed) {
  auto json = nlohmann::json::parse(R"({"name": 5, "role": "viewer"})");
  auto wrong =
      CheckObject(json, "", {{"name", JsonType::kString, true}, {"role", JsonType::kString, true}});
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().message(), "name: expected a string, got an integer");

  auto missing = CheckObject(nlohmann::json::object(), "", {{"name", JsonType::kString, true}});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(), "name: required field is missing (a string)");

  auto not_object = CheckObject(nlohmann::json::array(), "", {});
  ASSERT_FALSE(not_object);
  EXPECT_EQ(not_object.error().message(), "the request body: expected an object, got an array");
}

TEST(JsonInputTest, OptionalNullsCountAsAbsent) {
  auto json = nlohmann::json::parse(R"({"comment": null})");
  EXPECT_TRUE(CheckObject(json, "", {{"comment", JsonType::kString}}));
}

}  // namespace
}  // namespace fabu::coordinator
