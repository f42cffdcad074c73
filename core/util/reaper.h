// What kbuild starts dies with it, however kbuild dies: interrupt.h's cleanups run on Ctrl-C
// and SIGTERM, but nothing runs on SIGKILL (or a crash). A watchdog process, forked on the
// first registration, holds one end of a socket pair whose other end only kbuild holds; each
// program's process group and each build container is registered with it while it runs. When
// its end reads EOF (kbuild is gone, whatever the signal), it kills the groups and removes the
// containers still registered, and exits. It kills nothing that was not registered.
#pragma once

#include <sys/types.h>

#include <string>

namespace kbuild::reaper {

// A program's process group (its leader's pid): registered right after the program starts,
// forgotten once it has been waited for.
void watch_group(pid_t group);
void forget_group(pid_t group);

// A container of the Docker daemon at `socket` (a unix socket's path): registered once created,
// forgotten once removed.
void watch_container(const std::string& socket, const std::string& id);
void forget_container(const std::string& socket, const std::string& id);

}  // namespace kbuild::reaper
