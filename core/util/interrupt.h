// Ctrl-C and SIGTERM: kbuild stops at once, undoes what it started that would outlive it
// (build containers, child process groups), and exits with 128 + the signal's number.
#pragma once

#include <functional>

namespace kbuild {

// Blocks SIGINT and SIGTERM and takes them in one thread of its own. Call first thing in
// main, before any thread exists: threads inherit the blocked set.
void install_interrupt_handling();

// Something to undo on interruption, run in the signal thread (where HTTP calls and kill(2)
// are fine). Returns a handle for remove_cleanup.
int add_cleanup(std::function<void()> cleanup);
void remove_cleanup(int handle);

// True once a signal arrived.
bool interrupted();

// When interrupted: never returns (the signal thread is about to exit the process), so a
// failure the interruption caused is neither recorded nor reported. Otherwise returns.
void stop_here_if_interrupted();

}  // namespace kbuild
