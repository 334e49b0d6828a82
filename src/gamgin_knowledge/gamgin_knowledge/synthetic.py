"""Small PDFs written without a font or a PDF library, for tests and the benchmark.

No CJK font is installed on our machines, so tools that draw text (matplotlib, fpdf)
cannot make a Chinese PDF here. A text layer is what retrieval reads, so this writes
Type0/Identity-H text whose ToUnicode map says CID == Unicode code point (BMP only):
pypdf (and pdftotext) extract it exactly as a real scanned-then-OCRed or exported PDF.
"""

from __future__ import annotations

from pathlib import Path


def _obj(n: int, body: bytes) -> bytes:
    return b"%d 0 obj\n" % n + body + b"\nendobj\n"


_CMAP_HEAD = b"""/CIDInit /ProcSet findresource begin
12 dict begin
begincmap
/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def
/CMapName /Adobe-Identity-UCS def
/CMapType 2 def
1 begincodespacerange
<0000> <FFFF>
endcodespacerange
"""
_CMAP_TAIL = b"""endcmap
CMapName currentdict /CMap defineresource pop
end
end"""


def write_pdf(path: str | Path, pages: list[str], line_chars: int = 32) -> Path:
    """One page per string; long lines are wrapped like a real layout would."""
    objs: dict[int, bytes] = {}
    n_pages = len(pages)
    first_page = 6
    kids = " ".join(f"{first_page + 2 * i} 0 R" for i in range(n_pages)).encode()
    objs[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objs[2] = b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % n_pages
    objs[3] = (b"<< /Type /Font /Subtype /Type0 /BaseFont /SimSun /Encoding /Identity-H "
               b"/DescendantFonts [4 0 R] /ToUnicode 5 0 R >>")
    objs[4] = (b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /SimSun /CIDSystemInfo "
               b"<< /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /DW 1000 "
               b"/FontDescriptor << /Type /FontDescriptor /FontName /SimSun /Flags 4 "
               b"/FontBBox [0 -200 1000 900] /ItalicAngle 0 /Ascent 880 /Descent -120 "
               b"/CapHeight 700 /StemV 80 >> >>")
    # map only the characters used (CID == code point), as real PDFs subset their fonts;
    # one 64k-entry range would cost pypdf ~1 s a page to expand
    used = sorted({ord(c) for t in pages for c in t if 32 <= ord(c) <= 0xFFFF})
    cmap = _CMAP_HEAD
    for i in range(0, len(used), 100):
        block = used[i: i + 100]
        cmap += b"%d beginbfchar\n" % len(block) + b"".join(
            b"<%04X> <%04X>\n" % (c, c) for c in block) + b"endbfchar\n"
    cmap += _CMAP_TAIL
    objs[5] = b"<< /Length %d >>\nstream\n" % len(cmap) + cmap + b"\nendstream"
    for i, text in enumerate(pages):
        lines: list[str] = []
        for para in text.split("\n"):
            para = para.strip()
            if not para:
                lines.append("")
                continue
            while para:
                lines.append(para[:line_chars])
                para = para[line_chars:]
        ops = [b"BT /F1 11 Tf 14 TL 50 800 Td"]
        for ln in lines[:54]:
            hexs = "".join(f"{ord(c):04X}" for c in ln if ord(c) <= 0xFFFF)
            ops.append(b"<" + hexs.encode() + b"> Tj T*")
        ops.append(b"ET")
        content = b"\n".join(ops)
        objs[first_page + 2 * i] = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
                                    b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>"
                                    % (first_page + 2 * i + 1))
        objs[first_page + 2 * i + 1] = (b"<< /Length %d >>\nstream\n" % len(content) + content
                                        + b"\nendstream")
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for n in sorted(objs):
        offsets[n] = len(out)
        out += _obj(n, objs[n])
    xref = len(out)
    count = max(objs) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % count
    for n in range(1, count):
        out += b"%010d 00000 n \n" % offsets[n]
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (count, xref)
    path = Path(path)
    path.write_bytes(bytes(out))
    return path


def encrypt_pdf(src: str | Path, dst: str | Path, password: str) -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(str(src)))
    writer.encrypt(user_password=password, owner_password=password + "-owner",
                   algorithm="RC4-128")
    with open(dst, "wb") as f:
        writer.write(f)
    return Path(dst)


def blank_pdf(path: str | Path, pages: int = 2) -> Path:
    """Pages with no text layer, as a scanner without OCR makes."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(595, 842)
    with open(path, "wb") as f:
        writer.write(f)
    return Path(path)
