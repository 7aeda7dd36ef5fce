// Running a command-line tool from a GoogleTest: a fresh temporary folder per test (removed afterwards),
// and the tool's exit status, stdout and stderr.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace quarks::test {

struct ToolResult {
  int status = -1;  ///< exit status, -1 if the tool did not exit normally
  std::string out, err;
};

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// `arg` in single quotes for /bin/sh.
inline std::string shell_quote(const std::string& arg) {
  std::string out = "'";
  for (const char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

class ToolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "quarks_tool_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    tmp_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(tmp_, ec);
  }

  /// Runs `exe` with `args` (stdin empty), `env` (e.g. "NAME=value ") put before the command.
  ToolResult run_tool(const std::string& exe, const std::vector<std::string>& args, const std::string& env = "") const {
    std::string command = env + shell_quote(exe);
    for (const std::string& a : args) command += " " + shell_quote(a);
    const std::filesystem::path out = tmp_ / "stdout.txt", err = tmp_ / "stderr.txt";
    command += " >" + shell_quote(out.string()) + " 2>" + shell_quote(err.string()) + " </dev/null";
    const int raw = std::system(command.c_str());
    ToolResult r;
    r.status = raw != -1 && WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    r.out = read_text(out);
    r.err = read_text(err);
    return r;
  }

  std::filesystem::path tmp_;  ///< this test's folder
};

}  // namespace quarks::test
