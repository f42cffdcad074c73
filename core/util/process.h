// Runs a program and waits for it: output captured (or sent to a log file), an optional time
// limit after which its whole process group is killed.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace kbuild {

struct ProcessOptions {
    std::filesystem::path cwd;             // empty: the caller's
    std::vector<std::string> env;          // "NAME=value" added to (or replacing in) the environment
    std::filesystem::path log;             // set: stdout and stderr go to this file, not captured
    std::chrono::milliseconds timeout{0};  // 0: none
    std::string input;                     // written to the program's stdin
};

struct ProcessResult {
    int exit_code = -1;  // the exit status, or 128 + signal
    bool timed_out = false;
    std::string out;  // captured stdout (empty when logging to a file)
    std::string err;  // captured stderr (empty when logging to a file)
};

// Throws kbuild::Error when the program cannot be started (the message names it and why).
ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options = {});

}  // namespace kbuild
