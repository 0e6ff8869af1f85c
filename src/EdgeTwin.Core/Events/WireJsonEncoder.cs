using System.Text.Encodings.Web;

namespace EdgeTwin.Core.Events;

/// <summary>
/// The escaping of every JSON the agent puts on the wire (bodies, envelope, status): what JSON requires (<c>"</c>,
/// <c>\</c> and the control characters U+0000–U+001F, plus DEL) and every non-ASCII character are escaped
/// (<c>\"</c>, <c>\\</c>, <c>\n</c>, <c>\u00B0</c>, a surrogate pair for characters beyond U+FFFF); printable ASCII
/// stays as it is. The default <see cref="JavaScriptEncoder"/> also escapes HTML-sensitive ASCII (<c>+</c> as
/// <c>\u002B</c>, <c>'</c> as <c>\u0027</c>, <c>&lt;</c>, <c>&gt;</c>, <c>&amp;</c>, <c>`</c>), which the Outbox README
/// never promised: <c>0.1.0\u002B7f08cf5</c> and <c>2026-12-02T15:31:22\u002B00:00</c> defeated byte comparisons with
/// the documented examples and <c>grep '+00:00'</c> (consumer audit F8). One instance, set once in the writers' options:
/// the scan is a byte loop, nothing is allocated for strings without anything to escape.
/// </summary>
public sealed class WireJsonEncoder : JavaScriptEncoder
{
    public static WireJsonEncoder Instance { get; } = new();

    private WireJsonEncoder()
    {
    }

    /// <summary><c>\uD83D\uDE00</c>: a scalar beyond the BMP is one input scalar, two UTF-16 units, 12 output characters.</summary>
    public override int MaxOutputCharactersPerInputCharacter => 12;

    public override bool WillEncode(int unicodeScalar) => unicodeScalar is < 0x20 or '"' or '\\' or >= 0x7F;

    public override unsafe int FindFirstCharacterToEncode(char* text, int textLength)
    {
        ArgumentNullException.ThrowIfNull(text);
        return IndexOfEscape(new ReadOnlySpan<char>(text, textLength));
    }

    public override int FindFirstCharacterToEncodeUtf8(ReadOnlySpan<byte> utf8Text)
    {
        for (var i = 0; i < utf8Text.Length; i++)
        {
            // Every byte of a multi-byte sequence is >= 0x80: the first one is the position to encode from.
            var b = utf8Text[i];
            if (b < 0x20 || b == '"' || b == '\\' || b >= 0x7F)
            {
                return i;
            }
        }

        return -1;
    }

    public override unsafe bool TryEncodeUnicodeScalar(int unicodeScalar, char* buffer, int bufferLength, out int numberOfCharactersWritten)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        var destination = new Span<char>(buffer, bufferLength);
        numberOfCharactersWritten = 0;
        char? shortForm = unicodeScalar switch
        {
            '"' => '"',
            '\\' => '\\',
            '\b' => 'b',
            '\f' => 'f',
            '\n' => 'n',
            '\r' => 'r',
            '\t' => 't',
            _ => null,
        };
        if (shortForm is { } c)
        {
            if (destination.Length < 2)
            {
                return false;
            }

            destination[0] = '\\';
            destination[1] = c;
            numberOfCharactersWritten = 2;
            return true;
        }

        if (!WillEncode(unicodeScalar))
        {
            if (destination.Length < 1)
            {
                return false;
            }

            destination[0] = (char)unicodeScalar;
            numberOfCharactersWritten = 1;
            return true;
        }

        if (unicodeScalar <= 0xFFFF)
        {
            if (!Hex(destination, unicodeScalar))
            {
                return false;
            }

            numberOfCharactersWritten = 6;
            return true;
        }

        var rune = new System.Text.Rune(unicodeScalar);
        Span<char> pair = stackalloc char[2];
        rune.EncodeToUtf16(pair);
        if (destination.Length < 12 || !Hex(destination, pair[0]) || !Hex(destination[6..], pair[1]))
        {
            return false;
        }

        numberOfCharactersWritten = 12;
        return true;
    }

    private static int IndexOfEscape(ReadOnlySpan<char> text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c < 0x20 || c == '"' || c == '\\' || c >= 0x7F)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary><c>\uXXXX</c> with upper-case hex digits, as System.Text.Json writes them.</summary>
    private static bool Hex(Span<char> destination, int value)
    {
        if (destination.Length < 6)
        {
            return false;
        }

        const string digits = "0123456789ABCDEF";
        destination[0] = '\\';
        destination[1] = 'u';
        destination[2] = digits[(value >> 12) & 0xF];
        destination[3] = digits[(value >> 8) & 0xF];
        destination[4] = digits[(value >> 4) & 0xF];
        destination[5] = digits[value & 0xF];
        return true;
    }
}
