// query::Filter: the one filter type of the front-ends, parsed once from JSON.
#include "query/filter.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace {

using imsat::query::Filter;

TEST(QueryFilter, ParsesOnceFromJsonOrText) {
  const nlohmann::json j = nlohmann::json::parse(
      R"({"must": [{"key": "color", "match_any": ["red", "blue"]}, {"key": "price",
          "range": {"lt": 10}}]})");
  auto from_json = Filter::from_json(j);
  ASSERT_TRUE(from_json.is_ok()) << from_json.status().to_string();
  EXPECT_FALSE(from_json->empty());
  EXPECT_EQ(from_json->terms(), 2u + 2u);  // two conditions, two match_any values
  auto from_text = Filter::from_text(j.dump());
  ASSERT_TRUE(from_text.is_ok());
  EXPECT_EQ(from_text->terms(), from_json->terms());
  EXPECT_TRUE(Filter().empty());
  EXPECT_TRUE(Filter::from_text("{}")->empty());
}

TEST(QueryFilter, TheOlderLabelFormIsAMatchOnTheLabel) {
  auto f = Filter::from_text(R"({"label": 3})");
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ(f->terms(), 2u);  // one condition, one value
  for (const char* bad : {R"({"label": -1})", R"({"label": 4294967298})", R"({"label": "3"})"}) {
    auto refused = Filter::from_text(bad);
    ASSERT_FALSE(refused.is_ok()) << bad;
    EXPECT_NE(refused.status().message().find("filter.label"), std::string::npos)
        << refused.status().message();
  }
}

TEST(QueryFilter, BadFiltersAreRefusedNamingWhereAndTheLimit) {
  auto typo = Filter::from_text(R"({"must": [{"key": "a", "mach": 1}]})");
  ASSERT_FALSE(typo.is_ok());
  EXPECT_NE(typo.status().message().find("filter.must[0]"), std::string::npos)
      << typo.status().message();
  EXPECT_FALSE(Filter::from_text("not json").is_ok());
  EXPECT_FALSE(Filter::from_json(nlohmann::json::array()).is_ok());
  std::string values = "0";
  for (int i = 1; i < 50; ++i) values += "," + std::to_string(i);
  const std::string big = R"({"must": [{"key": "v", "match_any": [)" + values + "]}]}";
  EXPECT_TRUE(Filter::from_text(big).is_ok());
  auto capped = Filter::from_text(big, 40);
  ASSERT_FALSE(capped.is_ok());
  EXPECT_NE(capped.status().message().find("the limit is 40"), std::string::npos)
      << capped.status().message();
}

}  // namespace
