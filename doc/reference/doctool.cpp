// SPDX-License-Identifier: BSD-3-Clause
// Helper of the `docs` target (doc/reference/CMakeLists.txt); not installed.
//
//   ipmbqt_doctool check INDEX HEADER...
//       Reads the .index file of a `qdoc --prepare --showinternal` run and prints a qdoc-style
//       warning for every public API symbol declared in one of HEADERs that has no documentation.
//       qdoc 6.4 does not warn about those itself: it silently marks undocumented members private
//       and internal (Aggregate::markUndocumentedChildrenInternal), which also loses their real
//       access, so this reads it back from the header. Exit code 1 if anything is undocumented.
//
//   ipmbqt_doctool guide CMARK_GFM INPUT.md OUTPUT.html
//       Turns one guide of doc/ into a page beside the reference: cmark-gfm (GitHub's Markdown)
//       renders the body; this adds GitHub's heading anchors (so that "payloads.md#hostile-input"
//       keeps working), rewrites links between guides from .md to .html and wraps the page.

#include <QtCore/qcoreapplication.h>
#include <QtCore/qfile.h>
#include <QtCore/qfileinfo.h>
#include <QtCore/qhash.h>
#include <QtCore/qprocess.h>
#include <QtCore/qregularexpression.h>
#include <QtCore/qset.h>
#include <QtCore/qstringlist.h>
#include <QtCore/qxmlstream.h>

#include <cstdio>

using namespace Qt::StringLiterals;

namespace {

void print(const QString &line)
{
    std::fprintf(stderr, "%s\n", qPrintable(line));
}

QStringList readLines(const QString &path)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly | QIODevice::Text))
        return {};
    return QString::fromUtf8(file.readAll()).split(u'\n');
}

// Whether the declaration line mentions the node: a node whose line does not (Q_OBJECT's
// metaObject(), Q_DECLARE_SHARED's swap(), Q_DECLARE_METATYPE's QMetaTypeId) comes from a macro.
bool lineDeclares(const QString &line, const QString &name)
{
    if (name.isEmpty() || !(name.at(0).isLetter() || name.at(0) == u'_' || name.at(0) == u'~'))
        return line.contains(name);
    const QString word = name.startsWith(u'~') ? name.mid(1) : name;
    const QChar last = word.back();
    const bool wordEnd = last.isLetterOrNumber() || last == u'_'; // not "operator=="
    return line.contains(QRegularExpression(u"\\b"_s + QRegularExpression::escape(word)
                                            + (wordEnd ? u"\\b"_s : QString())));
}

enum class Access { Public, Protected, Private };

// The access of the member declared at line `memberLine` (1-based) of a class or struct whose
// head is at `classLine`: access labels at the class body's own brace depth, in order.
Access accessAt(const QStringList &lines, int classLine, int memberLine, bool isStruct)
{
    static const QRegularExpression label(
            uR"(^\s*(public|protected|private|Q_SIGNALS|signals)\s*(Q_SLOTS|slots)?\s*:(?!:))"_s);
    Access access = isStruct ? Access::Public : Access::Private;
    int depth = 0;
    for (int i = classLine - 1; i < memberLine - 1 && i < lines.size(); ++i) {
        QString line = lines.at(i);
        const qsizetype comment = line.indexOf(u"//"_s);
        if (comment >= 0)
            line.truncate(comment);
        if (depth == 1) {
            const QRegularExpressionMatch m = label.match(line);
            if (m.hasMatch()) {
                const QString word = m.captured(1);
                access = word == u"protected"_s ? Access::Protected
                        : word == u"private"_s  ? Access::Private
                                                 : Access::Public;
            }
        }
        depth += line.count(u'{') - line.count(u'}');
    }
    return access;
}

struct Node
{
    QString kind;
    QString name;
    QString file;
    int line = 0;
    bool skip = false; // not public API of a public header: neither it nor its members count
};

int check(const QString &indexPath, const QStringList &headers)
{
    QSet<QString> publicHeaders;
    for (const QString &header : headers)
        publicHeaders.insert(QFileInfo(header).canonicalFilePath());

    QFile index(indexPath);
    if (!index.open(QIODevice::ReadOnly)) {
        print(u"%1: cannot open: %2"_s.arg(indexPath, index.errorString()));
        return 2;
    }
    static const QSet<QString> nodeKinds = { u"namespace"_s, u"class"_s, u"struct"_s,
                                             u"union"_s, u"function"_s, u"enum"_s,
                                             u"property"_s, u"typedef"_s, u"variable"_s };
    QHash<QString, QStringList> headerLines;
    QList<Node> stack;
    int undocumented = 0;
    int checked = 0;
    struct Report { QString signature; QString message; };
    QList<Report> reports;
    // A function declared twice (a friend in the class, again after it, as for qHash) is two
    // nodes; documenting one is enough.
    QSet<QString> documentedSignatures;
    QXmlStreamReader xml(&index);
    while (!xml.atEnd()) {
        const QXmlStreamReader::TokenType token = xml.readNext();
        if (token == QXmlStreamReader::EndElement) {
            if (nodeKinds.contains(xml.name().toString()))
                stack.removeLast();
            continue;
        }
        if (token != QXmlStreamReader::StartElement || !nodeKinds.contains(xml.name().toString()))
            continue;
        const QXmlStreamAttributes a = xml.attributes();
        Node node;
        node.kind = xml.name().toString();
        node.name = a.value(u"name"_s).toString();
        node.file = a.value(u"filepath"_s).toString();
        node.line = a.value(u"lineno"_s).toInt();
        const QString fullName = a.hasAttribute(u"fullname"_s)
                ? a.value(u"fullname"_s).toString() : node.name;
        const Node *parent = stack.isEmpty() ? nullptr : &stack.constLast();
        node.skip = (parent && parent->skip)
                || !publicHeaders.contains(QFileInfo(node.file).canonicalFilePath());
        if (node.kind == u"namespace"_s) { // the global one; we declare no other
            node.skip = false;
            stack.append(node);
            continue;
        }
        if (!node.skip) {
            if (!headerLines.contains(node.file))
                headerLines.insert(node.file, readLines(node.file));
            const QStringList &lines = headerLines[node.file];
            const QString line = node.line > 0 && node.line <= lines.size() ? lines.at(node.line - 1)
                                                                            : QString();
            if (!lineDeclares(line, node.name) || node.name == u"anonymous"_s)
                node.skip = true;
            // Members of a class: only public and protected ones are API. Properties are
            // declared in the class's leading private section but are public all the same.
            if (!node.skip && parent && parent->kind != u"namespace"_s
                && node.kind != u"property"_s
                && accessAt(lines, parent->line, node.line, parent->kind == u"struct"_s)
                        == Access::Private) {
                node.skip = true;
            }
        }
        if (a.value(u"documented"_s) == u"true"_s && node.kind == u"function"_s)
            documentedSignatures.insert(a.value(u"signature"_s).toString());
        if (!node.skip) {
            ++checked;
            // Getters, setters and notifiers are documented by their \property (qdoc lists
            // them there); an undocumented property is reported on its own.
            const bool coveredByProperty = a.hasAttribute(u"associated-property"_s);
            if (a.value(u"documented"_s) != u"true"_s && !coveredByProperty) {
                QString what = node.kind;
                if (node.kind == u"function"_s)
                    what = a.value(u"signature"_s).toString();
                reports.append({ what, u"%1:%2: (qdoc) warning: No documentation for '%3' (%4)"_s.arg(
                        node.file, QString::number(node.line), fullName, what) });
            }
        }
        stack.append(node);
    }
    if (xml.hasError()) {
        print(u"%1:%2: cannot parse: %3"_s.arg(indexPath, QString::number(xml.lineNumber()),
                                                 xml.errorString()));
        return 2;
    }
    for (const Report &report : std::as_const(reports)) {
        if (documentedSignatures.contains(report.signature))
            continue;
        ++undocumented;
        print(report.message);
    }
    if (checked == 0) {
        print(u"%1: no symbol of the public headers found: the check is broken"_s.arg(indexPath));
        return 2;
    }
    if (undocumented)
        print(u"%1 of %2 public symbols have no documentation"_s.arg(undocumented).arg(checked));
    return undocumented ? 1 : 0;
}

// The text of an HTML fragment: tags dropped, the entities cmark-gfm writes decoded.
QString plainText(const QString &html)
{
    static const QRegularExpression tag(u"<[^>]*>"_s);
    QString text = html;
    text.remove(tag);
    text.replace(u"&lt;"_s, u"<"_s).replace(u"&gt;"_s, u">"_s).replace(u"&quot;"_s, u"\""_s);
    text.replace(u"&#39;"_s, u"'"_s).replace(u"&amp;"_s, u"&"_s);
    return text;
}

// GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens.
QString slug(const QString &html)
{
    QString text = plainText(html).toLower();
    QString out;
    for (const QChar c : text) {
        if (c.isLetterOrNumber() || c == u'-' || c == u'_')
            out += c;
        else if (c == u' ')
            out += u'-';
    }
    return out;
}

int guide(const QString &cmark, const QString &input, const QString &output)
{
    QProcess process;
    process.start(cmark, { u"-e"_s, u"table"_s, u"-e"_s, u"autolink"_s, u"-e"_s,
                           u"strikethrough"_s, u"-e"_s, u"tagfilter"_s, input });
    if (!process.waitForFinished(60000) || process.exitStatus() != QProcess::NormalExit
        || process.exitCode() != 0) {
        print(u"%1: %2 failed: %3%4"_s.arg(input, cmark, process.errorString(),
                                           QString::fromLocal8Bit(process.readAllStandardError())));
        return 1;
    }
    QString body = QString::fromUtf8(process.readAllStandardOutput());

    QString title = QFileInfo(input).completeBaseName();
    QHash<QString, int> used;
    static const QRegularExpression heading(uR"(<h([1-6])>(.*?)</h\1>)"_s);
    QString withAnchors;
    qsizetype last = 0;
    for (const QRegularExpressionMatch &m : heading.globalMatch(body)) {
        QString id = slug(m.captured(2));
        const int n = used[id]++;
        if (n > 0)
            id += u'-' + QString::number(n);
        if (m.captured(1) == u"1"_s && last == 0)
            title = plainText(m.captured(2));
        withAnchors += QStringView(body).mid(last, m.capturedStart() - last);
        withAnchors += u"<h%1 id=\"%2\">%3</h%1>"_s.arg(m.captured(1), id, m.captured(2));
        last = m.capturedEnd();
    }
    withAnchors += QStringView(body).mid(last);
    body = withAnchors;

    // Links between guides: "memory.md#x" -> "memory.html#x"; other relative links stay.
    static const QRegularExpression mdLink(uR"(href="([^":/#]+)\.md(#[^"]*)?")"_s);
    body.replace(mdLink, u"href=\"\\1.html\\2\""_s);

    const QString page = uR"(<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>%1 | IpmbQt</title>
  <link rel="stylesheet" type="text/css" href="../style/offline.css" />
  <style>table { border-collapse: collapse; } th, td { border: 1px solid #ccc; padding: 2px 6px; }
  pre { background: #f6f6f6; padding: 6px; overflow-x: auto; }</style>
</head>
<body>
<div class="content mainContent">
<p class="naviNextPrevious"><a href="../index.html">IpmbQt</a> &gt; %1</p>
%2
</div>
</body>
</html>
)"_s.arg(title.toHtmlEscaped(), body);

    QFile out(output);
    if (!out.open(QIODevice::WriteOnly | QIODevice::Truncate) || out.write(page.toUtf8()) < 0) {
        print(u"%1: cannot write: %2"_s.arg(output, out.errorString()));
        return 1;
    }
    return 0;
}

} // namespace

int main(int argc, char **argv)
{
    QCoreApplication app(argc, argv);
    const QStringList args = app.arguments().mid(1);
    if (args.size() >= 3 && args.at(0) == u"check"_s)
        return check(args.at(1), args.mid(2));
    if (args.size() == 4 && args.at(0) == u"guide"_s)
        return guide(args.at(1), args.at(2), args.at(3));
    print(u"usage: ipmbqt_doctool check INDEX HEADER... | guide CMARK_GFM INPUT.md OUTPUT.html"_s);
    return 2;
}
