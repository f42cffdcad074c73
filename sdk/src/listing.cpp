#include <kbuild/listing.hpp>

#include "repo_util.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace kbuild {
namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

std::string percent_decoded(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
            i += 2;
        } else {
            out += text[i];
        }
    }
    return out;
}

std::string entity_decoded(std::string text) {
    const std::pair<std::string_view, char> entities[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&#39;", '\''}};
    for (const auto& [entity, c] : entities)
        for (std::size_t at; (at = text.find(entity)) != std::string::npos;) text.replace(at, entity.size(), 1, c);
    return text;
}

// An entry of the directory itself: one component, or one directory component with its '/'.
bool inside_directory(const std::string& href) {
    if (href.empty() || href[0] == '?' || href[0] == '#' || href[0] == '/') return false;
    if (href.find("://") != std::string::npos || href.find('?') != std::string::npos) return false;
    const std::string name = href.back() == '/' ? href.substr(0, href.size() - 1) : href;
    return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

}  // namespace

std::vector<std::string> directory_entries(std::string_view html) {
    std::vector<std::string> entries;
    std::set<std::string> seen;
    std::string lower(html);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (std::size_t at = 0; (at = lower.find("href", at)) != std::string::npos;) {
        at += 4;
        std::size_t i = at;
        while (i < lower.size() && std::isspace(static_cast<unsigned char>(lower[i]))) ++i;
        if (i >= lower.size() || lower[i] != '=') continue;
        ++i;
        while (i < lower.size() && std::isspace(static_cast<unsigned char>(lower[i]))) ++i;
        if (i >= lower.size()) break;
        const char quote = lower[i];
        std::size_t end;
        if (quote == '"' || quote == '\'') {
            end = lower.find(quote, ++i);
        } else {
            end = lower.find_first_of(" \t\r\n>", i);
        }
        if (end == std::string::npos) break;
        std::string href = percent_decoded(entity_decoded(std::string(html.substr(i, end - i))));
        if (href.rfind("./", 0) == 0) href.erase(0, 2);
        at = end;
        if (inside_directory(href) && seen.insert(href).second) entries.push_back(href);
    }
    return entries;
}

std::vector<std::string> list_directory(const Host& host, const std::string& url) {
    return directory_entries(detail::read_text(host.fetch({"index", url}).path));
}

}  // namespace kbuild
