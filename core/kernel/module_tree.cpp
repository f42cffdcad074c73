#include "kernel/module_tree.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

namespace fs = std::filesystem;

namespace kbuild {
namespace {

// The file kbuild reads for a directory's rules: Kbuild wins over Makefile.
fs::path kbuild_file(const fs::path& dir) {
    std::error_code ec;
    if (fs::is_regular_file(dir / "Kbuild", ec)) return dir / "Kbuild";
    if (fs::is_regular_file(dir / "Makefile", ec)) return dir / "Makefile";
    return {};
}

// Logical lines: backslash continuations joined, comments dropped.
std::vector<std::string> logical_lines(const fs::path& file) {
    std::ifstream in(file);
    std::vector<std::string> lines;
    std::string pending;
    for (std::string line; std::getline(in, line);) {
        if (const auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
        if (!line.empty() && line.back() == '\\') {
            pending += line.substr(0, line.size() - 1) + ' ';
            continue;
        }
        lines.push_back(pending + line);
        pending.clear();
    }
    if (!pending.empty()) lines.push_back(pending);
    return lines;
}

const std::regex& assignment() {
    // NAME op value; recipe lines (a leading tab) are not assignments.
    static const std::regex re(R"(^ {0,8}([A-Za-z_][A-Za-z0-9_.-]*)\s*(\+=|:=|::=|\?=|=)\s*(.*?)\s*$)");
    return re;
}

// $(NAME) and ${NAME} replaced by what the file assigned them; false when one is unknown.
bool substitute(std::string& text, const std::map<std::string, std::string>& variables) {
    static const std::regex reference(R"(\$[({]([A-Za-z_][A-Za-z0-9_]*)[)}])");
    std::string out;
    bool known = true;
    auto begin = std::sregex_iterator(text.begin(), text.end(), reference);
    size_t last = 0;
    for (auto it = begin; it != std::sregex_iterator(); ++it) {
        out += text.substr(last, it->position() - last);
        const auto found = variables.find((*it)[1]);
        if (found == variables.end()) {
            known = false;
            out += it->str();
        } else {
            out += found->second;
        }
        last = it->position() + it->length();
    }
    text = out + text.substr(last);
    return known && text.find('$') == std::string::npos;
}

}  // namespace

DeclaredModules declared_modules(const fs::path& dir) {
    DeclaredModules declared;
    const fs::path file = kbuild_file(dir);
    if (file.empty()) return declared;
    std::map<std::string, std::string> variables;
    std::vector<std::string> entries;  // obj-m's words, as assigned
    for (const auto& line : logical_lines(file)) {
        std::smatch m;
        if (!std::regex_match(line, m, assignment())) continue;
        const std::string name = m[1], op = m[2], value = m[3];
        if (name == "obj-m") {
            if (op != "+=" && op != "?=") entries.clear();
            std::istringstream words(value);
            for (std::string word; words >> word;) entries.push_back(word);
            continue;
        }
        std::string resolved = value;
        substitute(resolved, variables);
        if (op == "+=" && variables.count(name))
            variables[name] += " " + resolved;
        else if (op != "?=" || !variables.count(name))
            variables[name] = resolved;
    }
    for (std::string word : entries) {
        if (!substitute(word, variables) || word.size() < 3 || word.compare(word.size() - 2, 2, ".o") != 0) {
            declared.complete = false;
            continue;
        }
        word.erase(word.size() - 2);
        if (std::find(declared.names.begin(), declared.names.end(), word) == declared.names.end())
            declared.names.push_back(word);
    }
    return declared;
}

std::vector<std::string> nested_module_trees(const fs::path& dir) {
    std::vector<std::string> trees;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::recursive_directory_iterator();
         it.increment(ec)) {
        if (ec) break;
        if (!it->is_directory() || it->is_symlink()) continue;
        if (it->path().filename().string().front() == '.') {
            it.disable_recursion_pending();
            continue;
        }
        const DeclaredModules inner = declared_modules(it->path());
        if (inner.names.empty() && inner.complete) continue;
        trees.push_back(fs::relative(it->path(), dir).string());
        it.disable_recursion_pending();  // all of it is the nested tree's
    }
    std::sort(trees.begin(), trees.end());
    return trees;
}

}  // namespace kbuild
