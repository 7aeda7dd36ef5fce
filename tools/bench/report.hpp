// quarks-bench's reports of timed runs: a table, Markdown, CSV or JSON (fields in tools/README.md).
#pragma once

#include <string>
#include <vector>

#include "tools/bench/machine.hpp"
#include "tools/bench/measure.hpp"

namespace quarks::bench {

void print_table(const Workload& w, const std::vector<RunResult>& runs, const Settings& s);
void print_markdown(const Workload& w, const std::vector<RunResult>& runs, const Settings& s);
void print_csv(const Workload& w, const std::vector<RunResult>& runs);
void print_json(const Workload& w, const std::vector<RunResult>& runs, const Settings& s);
/// --machine alone: the peaks as a table or JSON, and where they were saved.
void print_machine(const MachinePeaks& m, const std::string& format, const std::string& path);

}  // namespace quarks::bench
