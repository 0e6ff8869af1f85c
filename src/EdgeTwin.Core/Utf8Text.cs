using System.Buffers;
using System.Text;
using System.Text.Unicode;

namespace EdgeTwin.Core;

/// <summary>
/// UTF-8 checks for JSON read from outside (the control socket, twin requests, manifests). System.Text.Json checks a
/// string's UTF-8 only when the string is read, and then throws <see cref="InvalidOperationException"/> where the
/// readers expect their own format errors; checking the bytes first turns it into a bad request naming the byte.
/// </summary>
public static class Utf8Text
{
    /// <summary>The offset of the first byte that is not part of well-formed UTF-8; null when all are.</summary>
    public static int? InvalidAt(ReadOnlySpan<byte> text)
    {
        if (Utf8.IsValid(text))
        {
            return null; // the vectorised common case; the loop below only finds where
        }

        for (var at = 0; at < text.Length;)
        {
            if (Rune.DecodeFromUtf8(text[at..], out _, out var consumed) != OperationStatus.Done)
            {
                return at;
            }

            at += consumed;
        }

        return null;
    }

    /// <summary>As <see cref="InvalidAt(ReadOnlySpan{byte})"/> over a sequence (an MQTT payload).</summary>
    public static int? InvalidAt(ReadOnlySequence<byte> text) =>
        text.IsSingleSegment ? InvalidAt(text.FirstSpan) : InvalidAt(text.ToArray());
}
