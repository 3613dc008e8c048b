// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbqmlselector.h"

/*!
    \qmltype Selector
    \inqmlmodule IpmbQt
    \brief Makes the selectors that say which endpoints receive a message.

    Selector is a singleton: its methods are called on the type itself. Each takes a label op
    as text and returns a \l selector value for \l {Endpoint::send()}{Endpoint.send()}:

    \qml
    endpoint.send(Selector.unicast("earth"), "hello")                  // one endpoint labelled
    earth endpoint.send(Selector.multicast("renderer && !gpu0"), { frame: 12 }) // every
    renderer but gpu0 endpoint.send(Selector.multicast("viewer", 500), "late joiners too")  //
    kept 500 ms if nobody matches
    \endqml

    The controller matches the label op against the label of every endpoint on the bus. A
    unicast message goes to exactly one matching endpoint (spread round-robin), a multicast
    message to every matching one, the sender included if it matches. If nothing matches, the
    controller keeps the message for the ttl and delivers it if a matching endpoint joins in
    time; with a ttl of 0 (the default) it is dropped at once.

    \section2 Label-op syntax

    A label op is a boolean expression over names: a name is true for the labels that contain
    it; \c{!}, \c{&&} (binding tighter) and \c{||} combine them, with parentheses, and \c true
    and \c false stand for every label and none. The exact grammar, the characters a name may
    have without quotes and the limits (65536 characters, 64 levels) are those of
    IpmbLabelOp::fromString(), which these functions call. In a QML string literal a quoted name
    is written \c {Selector.unicast('"main window"')}.

    \table
    \header \li Text \li Matches
    \row \li \c {earth} \li the labels that contain \c earth
    \row \li \c {renderer && !gpu0} \li the labels that contain \c renderer but not \c gpu0
    \row \li \c {planet || moon} \li the labels that contain \c planet, \c moon or both
    \row \li \c {(planet || moon) && !earth} \li the labels that contain \c planet or \c moon,
         but not \c earth
    \row \li \c {"main window" && com.example/editor} \li the labels that contain both names
    \row \li \c {true} \li every label
    \row \li \c {false} \li no label
    \endtable

    \section2 Syntax errors

    A text that does not parse never becomes a selector that silently matches nobody: it gives
    an invalid selector, whose \l {selector.valid}{valid} is \c false and whose
    \l {selector.errorString}{errorString} says what is wrong and where (positions count from
    0). \l {Endpoint::send()}{Endpoint.send()} refuses an invalid selector: it returns \c false
    and emits \l {Endpoint::errorOccurred()}{errorOccurred()} with
    \c Endpoint.InvalidArgumentError, and the endpoint's \l {Endpoint::errorString}{errorString}
    has the parse error.

    \qml
    const selector = Selector.unicast("earth &&")
    // selector.valid: false
    // selector.errorString: invalid label op "earth &&": expected an operand at position 8
    //                       (end of input)
    endpoint.send(selector, "hello")   // false; endpoint.error === Endpoint.InvalidArgumentError
    \endqml

    Check \c valid before sending when the text comes from the user.

    Selector also holds the delivery modes that \l {selector.mode} takes: \c Selector.Unicast
    and \c Selector.Multicast.

    \sa {Endpoint::send()}{Endpoint.send()}, selector, labelOp, IpmbSelector::fromString()
*/

/*!
    \qmlmethod selector Selector::unicast(string labelOp, int ttlMsecs = 0)

    Returns a selector that delivers a message to exactly one endpoint whose label matches
    \a labelOp, written in the label-op syntax. If no endpoint matches, the controller keeps
    the message for \a ttlMsecs milliseconds and delivers it if a matching endpoint joins in
    time; 0 drops it at once, and negative values are taken as 0.

    If \a labelOp does not parse, the selector is invalid and
    \l {Endpoint::send()}{Endpoint.send()} refuses it; see "Syntax errors" above.

    \sa multicast()
*/

/*!
    \qmlmethod selector Selector::multicast(string labelOp, int ttlMsecs = 0)

    Returns a selector that delivers a message to every endpoint whose label matches
    \a labelOp, written in the label-op syntax, the sender included if it matches. If no
    endpoint matches, the controller keeps the message for \a ttlMsecs milliseconds and
    delivers it if a matching endpoint joins in time; 0 drops it at once, and negative values
    are taken as 0.

    If \a labelOp does not parse, the selector is invalid and
    \l {Endpoint::send()}{Endpoint.send()} refuses it; see "Syntax errors" above.

    \sa unicast()
*/

IpmbSelector IpmbQmlSelector::unicast(const QString &labelOp, int ttlMsecs) const
{
    return IpmbSelector::fromString(IpmbSelector::Unicast, labelOp, std::chrono::milliseconds(ttlMsecs));
}

IpmbSelector IpmbQmlSelector::multicast(const QString &labelOp, int ttlMsecs) const
{
    return IpmbSelector::fromString(IpmbSelector::Multicast, labelOp, std::chrono::milliseconds(ttlMsecs));
}
