// The command-line parse shared by quarks' tools (CLI11).
#pragma once

#include <optional>

#include <CLI/CLI.hpp>

namespace quarks::tools {

/// Parses argv into `app`. --help (and --version) print and give their exit status; a parse error goes
/// to `usage_error(message)`, which prints it and returns the tool's usage status. nullopt: go on.
template <class UsageError>
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv, const UsageError& usage_error) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return usage_error(e.what());
  }
  return std::nullopt;
}

}  // namespace quarks::tools
