// A kernel's .config and source tree, read as Kconfig and the top Makefile write them, and how a
// source tree is made to carry a given release (`uname -r`).
#pragma once

#include <filesystem>
#include <string>

namespace kbuild {

// The value of KEY in a .config, quotes removed; "" when the config does not set it. As Kconfig
// reads a config, the last assignment wins and "# KEY is not set" unsets it. Throws
// Error naming the file when it cannot be read.
std::string config_value(const std::filesystem::path& config, const std::string& key);

// The release a kernel source tree makes by itself: its top Makefile's VERSION.PATCHLEVEL.SUBLEVEL
// then EXTRAVERSION ("6.1.158", "6.8.0-rc1"), then the text of its localversion* files
// ("6.1.158-rt13"). Throws Error naming the tree when it has no such Makefile.
std::string source_version(const std::filesystem::path& source_dir);

// How a tree of source version `version` whose config sets CONFIG_LOCALVERSION to
// `config_localversion` gets the release `release`: kernelrelease is version, then
// CONFIG_LOCALVERSION, then make's LOCALVERSION.
struct LocalVersion {
    std::string localversion;          // make's LOCALVERSION=
    bool clear_config_localversion{};  // the config's CONFIG_LOCALVERSION does not fit: set it to ""
};

// Throws Error when `release` does not start with `version` ("release 5.6.1 cannot be made from
// the source of 5.5.2"). A release past the version and the config's local version takes the
// rest as LOCALVERSION; one that does not continue the config's takes all of its rest (the
// Falco build service's rule: "5.5.2-arch1-1" from a 5.5.2 tree gets LOCALVERSION=-arch1-1).
LocalVersion local_version_for(const std::string& release, const std::string& version,
                               const std::string& config_localversion);

}  // namespace kbuild
