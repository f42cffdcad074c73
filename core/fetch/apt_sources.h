// apt's configured sources on this host (/etc/apt/sources.list and sources.list.d/*.list in
// one-line form, sources.list.d/*.sources in deb822 form): where the Debian plugin crawls when
// no --mirror is given.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace kbuild {

struct AptSource {
    std::string uri;  // without a trailing slash
    std::vector<std::string> suites;
    std::vector<std::string> components;
};

// Binary ("deb") sources only; disabled ones (Enabled: no) skipped. etc_apt: normally /etc/apt.
std::vector<AptSource> read_apt_sources(const std::filesystem::path& etc_apt = "/etc/apt");

// The distinct URIs, in the order apt lists them.
std::vector<std::string> apt_mirror_uris(const std::vector<AptSource>& sources);

}  // namespace kbuild
