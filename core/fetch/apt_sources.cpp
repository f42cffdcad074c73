#include "fetch/apt_sources.h"

#include <kbuild/deb.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace kbuild {
namespace {

std::vector<std::string> words(std::string_view text) {
    std::vector<std::string> out;
    std::istringstream in{std::string(text)};
    for (std::string word; in >> word;) out.push_back(word);
    return out;
}

std::string without_trailing_slash(std::string uri) {
    while (!uri.empty() && uri.back() == '/') uri.pop_back();
    return uri;
}

std::string read_text(const fs::path& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

void read_one_line_file(const fs::path& path, std::vector<AptSource>& out) {
    std::istringstream lines(read_text(path));
    for (std::string line; std::getline(lines, line);) {
        line = line.substr(0, line.find('#'));
        std::vector<std::string> w = words(line);
        if (w.size() < 3 || w[0] != "deb") continue;
        size_t i = 1;
        if (w[i].front() == '[') {  // [arch=amd64 signed-by=...]
            while (i < w.size() && w[i].back() != ']') ++i;
            ++i;
        }
        if (i + 1 >= w.size()) continue;
        AptSource source{without_trailing_slash(w[i]), {w[i + 1]}, {}};
        source.components.assign(w.begin() + static_cast<long>(i) + 2, w.end());
        out.push_back(source);
    }
}

void read_deb822_file(const fs::path& path, std::vector<AptSource>& out) {
    deb::read_paragraphs_text(read_text(path), [&](const deb::Paragraph& p) {
        const auto types = words(p.get("Types"));
        if (std::find(types.begin(), types.end(), "deb") == types.end()) return;
        if (p.get("Enabled") == "no") return;
        for (const auto& uri : words(p.get("URIs")))
            out.push_back({without_trailing_slash(uri), words(p.get("Suites")), words(p.get("Components"))});
    });
}

}  // namespace

std::vector<AptSource> read_apt_sources(const fs::path& etc_apt) {
    std::vector<AptSource> sources;
    std::error_code ec;
    if (fs::is_regular_file(etc_apt / "sources.list", ec)) read_one_line_file(etc_apt / "sources.list", sources);
    std::vector<fs::path> parts;
    for (const auto& entry : fs::directory_iterator(etc_apt / "sources.list.d", ec)) parts.push_back(entry.path());
    std::sort(parts.begin(), parts.end());
    for (const auto& part : parts) {
        if (part.extension() == ".list") read_one_line_file(part, sources);
        if (part.extension() == ".sources") read_deb822_file(part, sources);
    }
    return sources;
}

std::vector<std::string> apt_mirror_uris(const std::vector<AptSource>& sources) {
    std::vector<std::string> uris;
    for (const auto& source : sources)
        if (std::find(uris.begin(), uris.end(), source.uri) == uris.end()) uris.push_back(source.uri);
    return uris;
}

}  // namespace kbuild
