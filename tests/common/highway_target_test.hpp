// A GoogleTest fixture that runs each test of a suite once per Highway target compiled in and supported
// by this CPU (AVX2, SSE4, scalar, ...): kernels dispatch to the target under test.
//
//   class MyKernelTest : public quarks::test::HighwayTargetTest {};
//   QUARKS_INSTANTIATE_ON_HIGHWAY_TARGETS(MyKernelTest);
//   TEST_P(MyKernelTest, Something) { ... }
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include <hwy/targets.h>

namespace quarks::test {

class HighwayTargetTest : public ::testing::TestWithParam<std::int64_t> {
 protected:
  void SetUp() override {
    hwy::SetSupportedTargetsForTest(GetParam());
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  }
  void TearDown() override {
    hwy::SetSupportedTargetsForTest(0);
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  }
};

/// Test name suffix: the target's name (AVX2, SSE4, ...).
inline std::string highway_target_name(const ::testing::TestParamInfo<std::int64_t>& info) {
  return hwy::TargetName(info.param);
}

}  // namespace quarks::test

#define QUARKS_INSTANTIATE_ON_HIGHWAY_TARGETS(Suite)                                                 \
  INSTANTIATE_TEST_SUITE_P(Targets, Suite, ::testing::ValuesIn(hwy::SupportedAndGeneratedTargets()), \
                           ::quarks::test::highway_target_name)
