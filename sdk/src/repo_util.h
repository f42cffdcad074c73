// What the deb and rpm repository layers share (internal to the SDK library, not installed):
// mirror URLs, small fetched text files, and the plugin-cache files that remember what was read
// from an index.
#pragma once

#include <kbuild/digest.hpp>
#include <kbuild/error.hpp>
#include <kbuild/types.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace kbuild::detail {

inline std::string trim_slash(std::string text) {
    while (!text.empty() && text.back() == '/') text.pop_back();
    return text;
}

// A fetched Release, repomd.xml or mirror.list: small, plain text, host-owned and read-only.
inline std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// What an earlier run cached: the JSON array in `file`, or null when there is none (or it is
// unreadable: it is then made again).
inline Json load_cached(const std::filesystem::path& file) {
    std::ifstream in(file);
    Json saved = Json::parse(in, nullptr, /*allow_exceptions=*/false);
    return saved.is_array() ? saved : Json();
}

// Writes the cache file whole or not at all (a temporary name, then a rename); `writer` tells
// apart the temporaries of processes caching the same index at once.
inline void save_cached(const std::filesystem::path& file, const Json& list, const std::string& writer) {
    std::filesystem::create_directories(file.parent_path());
    const std::filesystem::path temporary = file.string() + ".tmp-" + sha256_text(writer).substr(0, 8);
    std::ofstream(temporary) << list.dump();
    std::filesystem::rename(temporary, file);
}

// The error of a crawl that read nothing: "<head> a,b on any mirror (why)", why being the first
// error of what was read, else the first miss.
inline Error nothing_read(const std::string& head, const std::vector<std::string>& names,
                          const std::vector<std::string>& errors, const std::string& miss) {
    std::string joined;
    for (const auto& name : names) joined += (joined.empty() ? "" : ",") + name;
    const std::string why = errors.empty() ? miss : errors.front();
    return Error(head + " " + joined + " on any mirror" + (why.empty() ? "" : " (" + why + ")"));
}

}  // namespace kbuild::detail
