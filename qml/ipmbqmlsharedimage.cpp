// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbqmlsharedimage.h"

#include <QtGui/qimage.h>
#include <QtQuick/qquickwindow.h>
#include <QtQuick/qsgimagenode.h>
#include <QtQuick/qsgtexture.h>

#include <memory>

/*!
    \qmltype SharedImage
    \inqmlmodule IpmbQt
    \inherits Item
    \brief Shows an image whose pixels travel in a message's shared-memory region.

    SharedImage is an Item that shows the image a message carries: the message's payload
    describes the image, and its first memory region holds the pixels. The pixels never cross
    the socket and are never copied into the heap: the one copy a frame takes is the texture
    upload, which reads them from the shared memory. The image is scaled to fit the item,
    keeping its aspect ratio, and centred; Item's \c smooth property chooses linear (the
    default) or nearest filtering.

    Set \l source to an Endpoint, and the item shows every message of that endpoint whose
    payload describes an image and which carries a memory region, as it arrives:

    \qml
    import QtQuick
    import IpmbQt

    Window {
        width: 800; height: 480; visible: true

        Endpoint {
            id: endpoint
            identifier: "com.example.shared-frames"
            label: ["viewer"]
        }

        SharedImage {
            id: image
            anchors.fill: parent
            source: endpoint
            onMessageChanged: frameLabel.text = "frame " + image.payload.frame
        }

        Text { id: frameLabel; color: "white" }
    }
    \endqml

    \section2 Take frames through source, not through JavaScript

    The messages reach the item in C++ when it gets them from \l source: the previous frame's
    message, and with it its memory region, is released as soon as the next one is shown. A
    message handed to a JavaScript handler (such as Endpoint's
    \l {Endpoint::messageReceived()}{onMessageReceived}) is held by a JavaScript value until the
    garbage collector runs, not until the handler returns, and its regions with it: a producer
    that reuses its regions when the receivers let go of them (an IpmbMemoryRegistry pool) runs
    dry, and the frame rate collapses (from 60 to 1.4 frames a second in the shared-frames
    example). So for a stream of frames use \l source, and handle no messageReceived() of that
    endpoint in JavaScript; reading \l payload in \c onMessageChanged is fine, as the payload
    holds no region. Setting \l message from JavaScript suits a single image.

    \section2 The payload

    The payload is a map (a QVariantMap in C++, an object in JavaScript) with these keys; other
    keys are allowed, and left to the application (\l payload reads them):

    \table
    \header \li Key \li Value
    \row \li \c width \li The width in pixels, 1 to 16384.
    \row \li \c height \li The height in pixels, 1 to 16384.
    \row \li \c bytesPerLine \li The distance in bytes from the start of one line to the next:
         at least \c width times the bytes of a pixel, a multiple of 4, and at most 65536.
    \row \li \c format \li A QImage::Format value, one of those below.
    \endtable

    The pixels are in the message's first memory region, from its first byte, line after line:
    the region must hold at least \c bytesPerLine times \c height bytes. The accepted formats,
    8 bits a channel, are those a texture upload takes without a conversion:

    \table
    \header \li QImage::Format \li Value
    \row \li \c Format_RGB32 \li 4
    \row \li \c Format_ARGB32 \li 5
    \row \li \c Format_ARGB32_Premultiplied \li 6
    \row \li \c Format_RGBX8888 \li 16
    \row \li \c Format_RGBA8888 \li 17
    \row \li \c Format_RGBA8888_Premultiplied \li 18
    \row \li \c Format_Grayscale8 \li 24
    \endtable

    The description comes from another process, and a sender may lie: every number is checked
    against the region before the image is laid over its memory, so that the upload never reads
    past the region. A message that fails a check shows nothing; \l errorString says which
    check failed and \l imageSize is 0x0.

    A producer in C++ paints into the region (through a QImage laid over IpmbMemoryRegion::data())
    and sends the description that \c {IpmbQmlSharedImage::describe(const QImage &image)} returns:
    the map above for \c image, to which it may add keys of its own.

    \code
    #include <IpmbQt/IpmbEndpoint>
    #include <IpmbQt/IpmbMemoryRegistry>
    #include <ipmbqmlsharedimage.h>   // target IpmbQt::IpmbQtQml

    IpmbMemoryRegion region = registry.alloc(640 * 4 * 360, u"frame"_s);
    QImage image(static_cast<uchar *>(region.data()), 640, 360, 640 * 4,
                 QImage::Format_ARGB32_Premultiplied);
    paint(image);                                        // straight into the shared memory
    QVariantMap payload = IpmbQmlSharedImage::describe(image);
    payload.insert(u"frame"_s, frameNumber);             // for the viewer's own use
    IpmbMessage message(IpmbSelector::multicast(IpmbLabelOp("viewer")), payload);
    message.addRegion(region);
    endpoint.send(message);
    \endcode

    A SharedImage holds the regions of its current message until it gets the next one (or is
    destroyed), so a producer writes each frame into a region that no viewer holds any longer:
    a fresh one from an IpmbMemoryRegistry, as above, which takes a region back once every
    receiver has let go of it. See the \l {guides/memory.html}{shared memory guide} and the
    shared-frames example in \c examples/shared-frames.

    \sa Endpoint, {message}{message value type}, memoryRegion
*/

/*!
    \qmlproperty Endpoint SharedImage::source

    The endpoint whose messages the item shows; \c null by default. Every message the endpoint
    receives whose payload is a map with a \c width key and which carries at least one memory
    region is set as \l message, in C++, as it arrives; other messages are left alone. Setting
    another endpoint, or \c null, stops taking the messages of the previous one; the image shown
    stays until the next message.
*/

/*!
    \qmlproperty message SharedImage::message

    The message whose image is shown. Set by \l source for each frame, or by hand; each set,
    whether or not the image is valid, emits \c messageChanged() (the handler is
    \c onMessageChanged) and updates \l payload, \l imageSize and \l errorString. The item keeps
    the message's first region mapped while it shows its image.
*/

/*!
    \qmlproperty var SharedImage::payload
    \readonly

    The payload of \l message, a JavaScript object for a payload that describes an image. Keys
    that the producer added, such as a frame number or a timestamp, are read here. Reading it
    does not hold the message or its regions. Changes with \l message.
*/

/*!
    \qmlproperty size SharedImage::imageSize
    \readonly

    The size of the image shown, in pixels; 0x0 when none is shown (no message yet, or one that
    failed a check).
*/

/*!
    \qmlproperty string SharedImage::errorString
    \readonly

    Why the last \l message shows nothing, such as \c {the region of 1024 bytes is smaller than
    the image (65536 bytes)}; empty when its image is shown.
*/

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
