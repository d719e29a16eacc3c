// qr_code.h — QR codes for the two-factor enrolment URI (an SVG for the web panel,
// UTF-8 half blocks for posternctl), both drawn from one module matrix.
//
// Interface:
//   QrMatrix::encode(text)  the QR symbol (libqrencode: 8-bit mode, error correction
//                           level M, smallest version that fits); an error for empty
//                           text or more than kMaxQrTextBytes bytes.
//   matrix.dark(x, y)       true for a dark module; false outside the symbol.
//   matrix.toSvg(px)        a standalone <svg> (viewBox in modules, a 4-module quiet
//                           zone, white background, one <path> of dark squares, `px`
//                           pixels per module for width/height); nothing from `text` is
//                           written into it, so it is safe to embed in HTML as is.
//   matrix.toTerminal()     lines of U+2580/U+2584/U+2588 blocks, two module rows per
//                           text line, light modules drawn as blocks (for the usual
//                           dark terminal background; `qrencode -t UTF8` does the
//                           same), with a 2-module quiet zone.
// Security: the text (a TOTP secret) is not logged or cached.
// Limits: kMaxQrTextBytes (512) of text.
// Standards: ISO/IEC 18004 (through libqrencode); quiet zone 4 modules (SVG).
#pragma once

#include "result.h"

#include <QByteArray>
#include <QString>

namespace postern {

inline constexpr int kMaxQrTextBytes = 512;

class QrMatrix {
public:
    static Result<QrMatrix> encode(const QByteArray& text);
    int size() const { return m_size; }
    bool dark(int x, int y) const;
    QString toSvg(int pixelsPerModule = 4) const;
    QString toTerminal() const;

private:
    int m_size = 0;
    QByteArray m_modules;  // m_size * m_size bytes, 1 = dark
};

}  // namespace postern
