// Plugin options (--option KEY=VALUE, the config file's option lists) as plugins read them.
#pragma once

#include <kbuild/types.hpp>

#include <sstream>
#include <string>
#include <vector>

namespace kbuild {

// An option's value, or the fallback when unset or empty.
inline std::string option(const Options& options, const std::string& key, const std::string& fallback) {
    const auto it = options.find(key);
    return it == options.end() || it->second.empty() ? fallback : it->second;
}

// "a,b,,c" -> {a, b, c}
inline std::vector<std::string> split_list(const std::string& text, char separator = ',') {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string item; std::getline(in, item, separator);)
        if (!item.empty()) out.push_back(item);
    return out;
}

}  // namespace kbuild
