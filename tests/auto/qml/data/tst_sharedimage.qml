// SPDX-License-Identifier: BSD-3-Clause
import QtQuick
import QtTest
import IpmbQt
import IpmbQtTest

TestCase {
    id: testCase
    name: "SharedImage"
    width: 100
    height: 100
    visible: true
    when: windowShown && endpoint.state === Endpoint.JoinedState

    Endpoint {
        id: endpoint
        identifier: TestBus.identifier
        label: ["qmltest"]
    }
    SignalSpy { id: received; target: endpoint; signalName: "messageReceived" }

    SharedImage {
        id: image
        anchors.fill: parent
    }

    function frame(request) {
        received.clear()
        verify(endpoint.send(Selector.unicast("echo"), request))
        received.wait(5000)
        return received.signalArguments[0][0]
    }

    function test_showsRegion() {
        const message = frame("frame")
        compare(message.regionCount, 1)
        image.message = message
        compare(image.errorString, "")
        compare(image.imageSize, Qt.size(4, 4))
        waitForRendering(image)
        const grabbed = grabImage(image)
        const pixel = grabbed.pixel(50, 50)
        compare(pixel.r, 1)
        compare(pixel.g, 0)
        compare(pixel.b, 0)
    }

    function test_refusesLyingDescription() {
        image.message = frame("badframe")
        verify(image.errorString.indexOf("smaller than the image") >= 0, image.errorString)
        compare(image.imageSize, Qt.size(0, 0))
    }
}
