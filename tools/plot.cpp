// A small precision-recall plot as standalone SVG (no plotting library needed to view it).
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "cli.h"

namespace imsat::cli {
namespace {

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

void write_pr_svg(const std::string& path, const std::string& title,
                  const std::vector<PlotCurve>& curves) {
  static const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                  "#9467bd", "#8c564b", "#e377c2", "#17becf"};
  const double width = 640, height = 480, left = 70, right = 190, top = 40, bottom = 60;
  const double pw = width - left - right, ph = height - top - bottom;
  auto x = [&](double r) { return left + r * pw; };
  auto y = [&](double p) { return top + (1 - p) * ph; };
  std::ostringstream svg;
  svg.setf(std::ios::fixed);
  svg.precision(1);
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << left + pw / 2 << "\" y=\"24\" text-anchor=\"middle\" font-size=\"14\">"
      << escape(title) << "</text>\n";
  for (int i = 0; i <= 10; ++i) {
    const double v = i / 10.0;
    svg << "<line x1=\"" << x(0) << "\" y1=\"" << y(v) << "\" x2=\"" << x(1) << "\" y2=\"" << y(v)
        << "\" stroke=\"#e0e0e0\"/>\n"
        << "<line x1=\"" << x(v) << "\" y1=\"" << y(0) << "\" x2=\"" << x(v) << "\" y2=\"" << y(1)
        << "\" stroke=\"#e0e0e0\"/>\n"
        << "<text x=\"" << left - 8 << "\" y=\"" << y(v) + 4 << "\" text-anchor=\"end\">" << v
        << "</text>\n"
        << "<text x=\"" << x(v) << "\" y=\"" << top + ph + 18 << "\" text-anchor=\"middle\">" << v
        << "</text>\n";
  }
  svg << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
      << "\" fill=\"none\" stroke=\"black\"/>\n"
      << "<text x=\"" << left + pw / 2 << "\" y=\"" << height - 18
      << "\" text-anchor=\"middle\">recall</text>\n"
      << "<text transform=\"translate(20," << top + ph / 2
      << ") rotate(-90)\" text-anchor=\"middle\">precision</text>\n";
  svg.precision(2);
  for (size_t c = 0; c < curves.size(); ++c) {
    const PlotCurve& curve = curves[c];
    const char* colour = colours[c % (sizeof(colours) / sizeof(colours[0]))];
    svg << "<polyline fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"2\" points=\"";
    for (size_t i = 0; i < curve.recall.size() && i < curve.precision.size(); ++i) {
      svg << x(std::clamp(curve.recall[i], 0.0, 1.0)) << ','
          << y(std::clamp(curve.precision[i], 0.0, 1.0)) << ' ';
    }
    svg << "\"/>\n";
    const double ly = top + 10 + 20 * static_cast<double>(c);
    svg << "<line x1=\"" << left + pw + 12 << "\" y1=\"" << ly << "\" x2=\"" << left + pw + 36
        << "\" y2=\"" << ly << "\" stroke=\"" << colour << "\" stroke-width=\"2\"/>\n"
        << "<text x=\"" << left + pw + 42 << "\" y=\"" << ly + 4 << "\">" << escape(curve.label)
        << "</text>\n";
  }
  svg << "</svg>\n";
  std::ofstream f(path);
  f << svg.str();
  if (!f) throw std::runtime_error(path + ": cannot write");
}

}  // namespace imsat::cli
