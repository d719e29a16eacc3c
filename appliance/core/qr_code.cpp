// qr_code.cpp — see qr_code.h.
#include "qr_code.h"

#include <qrencode.h>

#include <algorithm>

namespace postern {

Result<QrMatrix> QrMatrix::encode(const QByteArray& text) {
    if (text.isEmpty()) return Result<QrMatrix>::fail(QStringLiteral("nothing to put in a QR code"));
    if (text.size() > kMaxQrTextBytes)
        return Result<QrMatrix>::fail(QStringLiteral("QR code text longer than %1 bytes").arg(kMaxQrTextBytes));
    QRcode* code =
        QRcode_encodeData(int(text.size()), reinterpret_cast<const unsigned char*>(text.constData()), 0, QR_ECLEVEL_M);
    if (!code) return Result<QrMatrix>::fail(QStringLiteral("QR encoding failed"));
    QrMatrix m;
    m.m_size = code->width;
    m.m_modules.resize(qsizetype(code->width) * code->width);
    for (qsizetype i = 0; i < m.m_modules.size(); ++i) m.m_modules[i] = char(code->data[i] & 1);  // bit 0: dark
    QRcode_free(code);
    return m;
}

bool QrMatrix::dark(int x, int y) const {
    if (x < 0 || y < 0 || x >= m_size || y >= m_size) return false;
    return m_modules.at(qsizetype(y) * m_size + x) != 0;
}

QString QrMatrix::toSvg(int pixelsPerModule) const {
    constexpr int kQuiet = 4;
    const int full = m_size + 2 * kQuiet;
    const int px = full * std::max(1, pixelsPerModule);
    QString path;
    for (int y = 0; y < m_size; ++y)
        for (int x = 0; x < m_size; ++x)
            if (dark(x, y)) path += QStringLiteral("M%1 %2h1v1h-1z").arg(x + kQuiet).arg(y + kQuiet);
    return QStringLiteral(
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%1\" height=\"%1\" viewBox=\"0 0 %2 %2\" "
               "shape-rendering=\"crispEdges\" role=\"img\" aria-label=\"QR code\">"
               "<rect width=\"%2\" height=\"%2\" fill=\"#fff\"/><path fill=\"#000\" d=\"%3\"/></svg>")
        .arg(px)
        .arg(full)
        .arg(path);
}

QString QrMatrix::toTerminal() const {
    constexpr int kQuiet = 2;
    QString out;
    // Light modules are drawn (blocks), dark ones left blank: a dark terminal shows the code.
    for (int y = -kQuiet; y < m_size + kQuiet; y += 2) {
        for (int x = -kQuiet; x < m_size + kQuiet; ++x) {
            const bool top = !dark(x, y);
            const bool bottom = (y + 1 < m_size + kQuiet) ? !dark(x, y + 1) : false;
            if (top && bottom)
                out += QChar(0x2588);
            else if (top)
                out += QChar(0x2580);
            else if (bottom)
                out += QChar(0x2584);
            else
                out += QLatin1Char(' ');
        }
        out += QLatin1Char('\n');
    }
    return out;
}

}  // namespace postern
