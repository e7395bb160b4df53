#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "format.h"
#include "table.h"

namespace lorad::client {
namespace {

TEST(HumanBytesTest, BinaryUnits) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1024), "1.0 KiB");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(int64_t{1} << 20), "1.0 MiB");
  EXPECT_EQ(HumanBytes(int64_t{1288490189}), "1.2 GiB");
  EXPECT_EQ(HumanBytes(int64_t{3} << 40), "3.0 TiB");
  EXPECT_EQ(HumanBytes(-1), "-");
}

TEST(HumanBytesTest, RoundsUpIntoTheNextUnit) {
  EXPECT_EQ(HumanBytes((int64_t{1} << 20) - 10), "1.0 MiB");
}

TEST(FormatDurationTest, HoursMinutesSeconds) {
  EXPECT_EQ(FormatDuration(0), "00:00:00");
  EXPECT_EQ(FormatDuration(83), "00:01:23");
  EXPECT_EQ(FormatDuration(83.6), "00:01:24");
  EXPECT_EQ(FormatDuration(3600 * 2 + 61), "02:01:01");
  EXPECT_EQ(FormatDuration(3600.0 * 123), "123:00:00");
}

TEST(FormatDurationTest, UnknownRendersDashes) {
  EXPECT_EQ(FormatDuration(-1), "--:--:--");
  EXPECT_EQ(FormatDuration(std::numeric_limits<double>::infinity()),
            "--:--:--");
  EXPECT_EQ(FormatDuration(std::nan("")), "--:--:--");
}

TEST(FormatUnixTimeTest, ZeroIsUnset) {
  EXPECT_EQ(FormatUnixTime(0), "-");
  EXPECT_EQ(FormatUnixTime(1700000000).size(), 19u);
}

TEST(JobStateTest, NamesAndFinality) {
  EXPECT_EQ(JobStateName(lorad::v1::RUNNING), "RUNNING");
  EXPECT_EQ(JobStateName(static_cast<lorad::v1::JobState>(99)), "UNKNOWN");
  EXPECT_TRUE(IsFinalState(lorad::v1::SUCCEEDED));
  EXPECT_TRUE(IsFinalState(lorad::v1::FAILED));
  EXPECT_TRUE(IsFinalState(lorad::v1::CANCELLED));
  EXPECT_FALSE(IsFinalState(lorad::v1::RUNNING));
  EXPECT_FALSE(IsFinalState(lorad::v1::QUEUED));
}

TEST(PercentDeltaTest, SignedPercent) {
  EXPECT_EQ(PercentDelta(93, 100), "-7%");
  EXPECT_EQ(PercentDelta(112, 100), "+12%");
  EXPECT_EQ(PercentDelta(1, 0), "");
}

TEST(TableTest, AlignsColumnsWithoutTrailingSpaces) {
  Table table({"ID", "STATE", "ADAPTER"});
  table.AddRow({"ft-1", "RUNNING", ""});
  table.AddRow({"ft-long", "OK"});
  EXPECT_EQ(table.Render(),
            "ID       STATE    ADAPTER\n"
            "ft-1     RUNNING\n"
            "ft-long  OK\n");
}

}  // namespace
}  // namespace lorad::client
