// The README's "Running lorad" flag table says what `lorad --help` says.
#include <cstdio>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>

#include "daemon_process.h"
#include "gtest/gtest.h"

namespace lorad::testing {
namespace {

std::string Unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') {
    return s.substr(1, s.size() - 2);
  }
  return s;
}

TEST(ReadmeFlagsTest, TableMatchesLoradHelp) {
  FILE* pipe = popen((LoradBinary() + " --help 2>&1").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string help;
  char buffer[4096];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) help += buffer;
  pclose(pipe);
  help = std::regex_replace(help, std::regex(R"(\s+)"), " ");
  std::map<std::string, std::string> from_help;
  const std::regex flag(R"(--([a-z_]+) \(.*?\); default: ("[^"]*"|[^;]+);)");
  for (std::sregex_iterator it(help.begin(), help.end(), flag), end; it != end;
       ++it) {
    from_help[(*it)[1]] = Unquote((*it)[2]);
  }
  ASSERT_GE(from_help.size(), 8u) << help;

  std::ifstream in(std::string(LORAD_SOURCE_DIR) + "/README.md");
  std::stringstream readme;
  readme << in.rdbuf();
  const std::string text = readme.str();
  const size_t section = text.find("## Running lorad");
  ASSERT_NE(section, std::string::npos);
  std::map<std::string, std::string> from_readme;
  const std::regex row(R"(\| `--([a-z_]+)` \| `([^`]*)` \|)");
  const std::string rest = text.substr(section);
  for (std::sregex_iterator it(rest.begin(), rest.end(), row), end; it != end;
       ++it) {
    from_readme[(*it)[1]] = Unquote((*it)[2]);
  }
  EXPECT_EQ(from_readme, from_help);
}

}  // namespace
}  // namespace lorad::testing
