// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbqmlsharedimage.h"

#include <QtGui/qimage.h>
#include <QtQuick/qquickwindow.h>
#include <QtQuick/qsgimagenode.h>
#include <QtQuick/qsgtexture.h>

#include <memory>

namespace {

// The formats a producer may use: 8-bit-per-channel RGB(A) and grey, the ones a texture upload
// takes without a conversion on the usual backends.
bool isAcceptedFormat(QImage::Format format)
{
    switch (format) {
    case QImage::Format_RGB32:
    case QImage::Format_ARGB32:
    case QImage::Format_ARGB32_Premultiplied:
    case QImage::Format_RGBX8888:
    case QImage::Format_RGBA8888:
    case QImage::Format_RGBA8888_Premultiplied:
    case QImage::Format_Grayscale8:
        return true;
    default:
        return false;
    }
}

constexpr qint64 MaxDimension = 16384; // a texture larger than this is refused by most GPUs

} // namespace

IpmbQmlSharedImage::IpmbQmlSharedImage(QQuickItem *parent)
    : QQuickItem(parent)
{
    setFlag(ItemHasContents);
}

IpmbQmlSharedImage::~IpmbQmlSharedImage() = default;

QVariantMap IpmbQmlSharedImage::describe(const QImage &image)
{
    return {{QStringLiteral("width"), image.width()},
            {QStringLiteral("height"), image.height()},
            {QStringLiteral("bytesPerLine"), qint64(image.bytesPerLine())},
            {QStringLiteral("format"), int(image.format())}};
}

void IpmbQmlSharedImage::setSource(IpmbQmlEndpoint *source)
{
    if (m_source == source)
        return;
    disconnect(m_sourceConnection);
    m_source = source;
    if (source) {
        m_sourceConnection = connect(source->endpoint(), &IpmbEndpoint::messageReceived, this,
                                     [this](const IpmbMessage &message) {
            if (message.regionCount() > 0 && message.payload().toMap().contains(QStringLiteral("width")))
                setMessage(message);
        });
    }
    Q_EMIT sourceChanged();
}

// The description comes from another process: every number is checked against the region before
// a QImage is laid over the memory, so that a lying sender cannot make the upload read past it.
void IpmbQmlSharedImage::setMessage(const IpmbMessage &message)
{
    m_message = message;
    Q_EMIT messageChanged();
    const QSize oldSize = m_image.size();
    m_image = QImage();
    const QVariantMap description = message.payload().toMap();
    const QList<IpmbMemoryRegion> regions = message.regions();
    const qint64 width = description.value(QStringLiteral("width")).toLongLong();
    const qint64 height = description.value(QStringLiteral("height")).toLongLong();
    const qint64 bytesPerLine = description.value(QStringLiteral("bytesPerLine")).toLongLong();
    const auto format = QImage::Format(description.value(QStringLiteral("format")).toInt());
    if (regions.isEmpty() || regions.constFirst().isNull()) {
        setErrorString(tr("the message has no memory region"));
    } else if (!isAcceptedFormat(format)) {
        setErrorString(tr("unsupported image format %1").arg(int(format)));
    } else if (width < 1 || height < 1 || width > MaxDimension || height > MaxDimension) {
        setErrorString(tr("image size %1x%2 is out of range").arg(width).arg(height));
    } else if (bytesPerLine < width * QImage::toPixelFormat(format).bitsPerPixel() / 8
               || bytesPerLine % 4 != 0 || bytesPerLine > MaxDimension * 4) {
        setErrorString(tr("%1 bytes per line do not fit a width of %2").arg(bytesPerLine).arg(width));
    } else if (regions.constFirst().size() < bytesPerLine * height) {
        setErrorString(tr("the region of %1 bytes is smaller than the image (%2 bytes)")
                               .arg(regions.constFirst().size()).arg(bytesPerLine * height));
    } else {
        // The QImage keeps a copy of the region (and so its mapping) for as long as it or a
        // texture made from it lives, in whichever thread renders.
        auto *keep = new IpmbMemoryRegion(regions.constFirst());
        m_image = QImage(static_cast<const uchar *>(keep->constData()), int(width), int(height),
                         qsizetype(bytesPerLine), format,
                         [](void *region) { delete static_cast<IpmbMemoryRegion *>(region); }, keep);
        setErrorString(QString());
    }
    m_imageChanged = true;
    if (m_image.size() != oldSize)
        Q_EMIT imageSizeChanged();
    update();
}

void IpmbQmlSharedImage::setErrorString(const QString &errorString)
{
    if (m_errorString == errorString)
        return;
    m_errorString = errorString;
    Q_EMIT errorStringChanged();
}

QSGNode *IpmbQmlSharedImage::updatePaintNode(QSGNode *oldNode, UpdatePaintNodeData *)
{
    auto *node = static_cast<QSGImageNode *>(oldNode);
    if (m_image.isNull()) {
        delete node;
        return nullptr;
    }
    if (!node)
        node = window()->createImageNode();
    if (m_imageChanged || !node->texture()) {
        // The one copy a frame takes: from the shared memory into the texture.
        node->setTexture(window()->createTextureFromImage(m_image));
        node->setOwnsTexture(true);
        m_imageChanged = false;
    }
    node->setFiltering(smooth() ? QSGTexture::Linear : QSGTexture::Nearest);
    // Fit, keeping the aspect ratio, centred.
    const QSizeF scaled = QSizeF(m_image.size()).scaled(size(), Qt::KeepAspectRatio);
    node->setRect(QRectF(QPointF((width() - scaled.width()) / 2, (height() - scaled.height()) / 2), scaled));
    return node;
}
