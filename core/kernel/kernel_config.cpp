#include "kernel/kernel_config.h"

#include "util/strings.h"

#include <kbuild/error.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <vector>

namespace fs = std::filesystem;

namespace kbuild {

std::string config_value(const fs::path& config, const std::string& key) {
    std::ifstream in(config);
    if (!in) throw Error(config.string() + ": cannot read the kernel's config");
    const std::string prefix = key + "=";
    const std::string unset = "# " + key + " is not set";
    // As Kconfig reads it: the last assignment wins (configs made by appending fragments set a
    // symbol more than once), and "is not set" unsets it.
    std::string value;
    for (std::string line; std::getline(in, line);) {
        if (trim(line) == unset) value.clear();
        if (line.compare(0, prefix.size(), prefix) != 0) continue;
        value = trim(line.substr(prefix.size()));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    }
    return value;
}

std::string source_version(const fs::path& source_dir) {
    std::ifstream in(source_dir / "Makefile");
    std::map<std::string, std::string> fields;
    // The four assignments open the Makefile; the first of each is the tree's.
    for (std::string line; std::getline(in, line) && fields.size() < 4;) {
        const size_t eq = line.find('=');
        if (eq == std::string::npos) continue;
        const std::string name = trim(line.substr(0, eq));
        if (name == "VERSION" || name == "PATCHLEVEL" || name == "SUBLEVEL" || name == "EXTRAVERSION")
            fields.emplace(name, trim(line.substr(eq + 1)));
    }
    if (fields["VERSION"].empty() || fields["PATCHLEVEL"].empty())
        throw Error(source_dir.string() + ": not a kernel source tree (its Makefile states no VERSION and PATCHLEVEL)");
    std::string version = fields["VERSION"] + "." + fields["PATCHLEVEL"];
    if (!fields["SUBLEVEL"].empty()) version += "." + fields["SUBLEVEL"];
    version += fields["EXTRAVERSION"];
    // scripts/setlocalversion adds the text of the tree's localversion* files, in name order
    // (the RT patch set's localversion-rt says "-rt13").
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(source_dir))
        if (entry.path().filename().string().rfind("localversion", 0) == 0 && entry.is_regular_file())
            files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
        std::ifstream text(file);
        for (std::string line; std::getline(text, line);) version += trim(line);
    }
    return version;
}

LocalVersion local_version_for(const std::string& release, const std::string& version,
                               const std::string& config_localversion) {
    if (release.compare(0, version.size(), version) != 0)
        throw Error("release " + release + " cannot be made from the source of " + version);
    const std::string with_config = version + config_localversion;
    if (release.compare(0, with_config.size(), with_config) == 0) return {release.substr(with_config.size()), false};
    return {release.substr(version.size()), true};
}

}  // namespace kbuild
