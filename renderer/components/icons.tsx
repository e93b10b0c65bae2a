import type { ReactNode, SVGProps } from 'react';

/** Props of every icon: decorative by default (hidden from assistive tech), sized by CSS. */
export type IconProps = Omit<SVGProps<SVGSVGElement>, 'children'>;

function icon(paths: ReactNode, displayName: string) {
  function Icon(props: IconProps) {
    return (
      <svg
        viewBox="0 0 24 24"
        width="1em"
        height="1em"
        fill="none"
        stroke="currentColor"
        strokeWidth={1.8}
        strokeLinecap="round"
        strokeLinejoin="round"
        aria-hidden="true"
        focusable="false"
        className="icon"
        {...props}
      >
        {paths}
      </svg>
    );
  }
  Icon.displayName = displayName;
  return Icon;
}

/** The Clearance mark: a shield with a check. */
export const LogoIcon = icon(
  <>
    <path d="M12 3 4.5 6v5.5c0 4.6 3.1 8.4 7.5 9.5 4.4-1.1 7.5-4.9 7.5-9.5V6L12 3Z" />
    <path d="m8.8 12.2 2.3 2.3 4.3-4.6" />
  </>,
  'LogoIcon',
);
/** A closed padlock: restricted. */
export const LockIcon = icon(
  <>
    <rect x="5" y="11" width="14" height="9" rx="2" />
    <path d="M8 11V8a4 4 0 0 1 8 0v3" />
  </>,
  'LockIcon',
);
/** A check mark in a circle: passed. */
export const PassIcon = icon(
  <>
    <circle cx="12" cy="12" r="9" />
    <path d="m8 12.5 2.7 2.7L16 9.8" />
  </>,
  'PassIcon',
);
/** A cross in a circle: failed. */
export const FailIcon = icon(
  <>
    <circle cx="12" cy="12" r="9" />
    <path d="m9 9 6 6M15 9l-6 6" />
  </>,
  'FailIcon',
);
/** A question mark in a circle: unknown, or help. */
export const UnknownIcon = icon(
  <>
    <circle cx="12" cy="12" r="9" />
    <path d="M9.6 9.4a2.5 2.5 0 0 1 4.8.9c0 1.7-2.4 2.2-2.4 3.7" />
    <path d="M12 17h.01" />
  </>,
  'UnknownIcon',
);
/** A warning triangle. */
export const WarningIcon = icon(
  <>
    <path d="M10.3 4.2 2.8 17.5A2 2 0 0 0 4.5 20.5h15a2 2 0 0 0 1.7-3L13.7 4.2a2 2 0 0 0-3.4 0Z" />
    <path d="M12 9.5v4M12 17h.01" />
  </>,
  'WarningIcon',
);
/** An i in a circle: information. */
export const InfoIcon = icon(
  <>
    <circle cx="12" cy="12" r="9" />
    <path d="M12 11v5.5M12 7.5h.01" />
  </>,
  'InfoIcon',
);
/** A plus: new. */
export const PlusIcon = icon(<path d="M12 5v14M5 12h14" />, 'PlusIcon');
/** A magnifier: search. */
export const SearchIcon = icon(
  <>
    <circle cx="11" cy="11" r="6.5" />
    <path d="m20 20-4.3-4.3" />
  </>,
  'SearchIcon',
);
/** A pencil: rename or edit. */
export const EditIcon = icon(
  <>
    <path d="M4 20h4L19 9a2.8 2.8 0 0 0-4-4L4 16v4Z" />
    <path d="m13.5 6.5 4 4" />
  </>,
  'EditIcon',
);
/** A bin: delete. */
export const TrashIcon = icon(
  <>
    <path d="M4 7h16M10 11v6M14 11v6" />
    <path d="M6 7l1 12a2 2 0 0 0 2 2h6a2 2 0 0 0 2-2l1-12M9 7V4h6v3" />
  </>,
  'TrashIcon',
);
/** Two overlapping sheets: copy. */
export const CopyIcon = icon(
  <>
    <rect x="8" y="8" width="12" height="12" rx="2" />
    <path d="M16 8V6a2 2 0 0 0-2-2H6a2 2 0 0 0-2 2v8a2 2 0 0 0 2 2h2" />
  </>,
  'CopyIcon',
);
/** A circular arrow: regenerate or check again. */
export const RefreshIcon = icon(
  <>
    <path d="M20 11a8 8 0 1 0-2.3 5.7" />
    <path d="M20 4v7h-7" />
  </>,
  'RefreshIcon',
);
/** A filled square: stop. */
export const StopIcon = icon(<rect x="7" y="7" width="10" height="10" rx="1.5" fill="currentColor" />, 'StopIcon');
/** An upward arrow: send. */
export const SendIcon = icon(<path d="M12 19V5M6 11l6-6 6 6" />, 'SendIcon');
/** A downward arrow into a tray: export. */
export const DownloadIcon = icon(
  <>
    <path d="M12 4v11M7 10l5 5 5-5" />
    <path d="M5 20h14" />
  </>,
  'DownloadIcon',
);
/** A downward chevron: opens a list. */
export const ChevronDownIcon = icon(<path d="m6 9 6 6 6-6" />, 'ChevronDownIcon');
/** A cross: close. */
export const CloseIcon = icon(<path d="M6 6l12 12M18 6 6 18" />, 'CloseIcon');
/** A sun: light theme. */
export const SunIcon = icon(
  <>
    <circle cx="12" cy="12" r="4" />
    <path d="M12 2v2M12 20v2M4.9 4.9l1.4 1.4M17.7 17.7l1.4 1.4M2 12h2M20 12h2M4.9 19.1l1.4-1.4M17.7 6.3l1.4-1.4" />
  </>,
  'SunIcon',
);
/** A moon: dark theme. */
export const MoonIcon = icon(<path d="M20 14.5A8 8 0 1 1 9.5 4a6.5 6.5 0 0 0 10.5 10.5Z" />, 'MoonIcon');
/** A monitor: follow the system theme. */
export const SystemIcon = icon(
  <>
    <rect x="3" y="4" width="18" height="12" rx="2" />
    <path d="M8 20h8M12 16v4" />
  </>,
  'SystemIcon',
);
/** A keyboard: shortcuts. */
export const KeyboardIcon = icon(
  <>
    <rect x="2.5" y="6" width="19" height="12" rx="2" />
    <path d="M6 10h.01M10 10h.01M14 10h.01M18 10h.01M7 14h10" />
  </>,
  'KeyboardIcon',
);
/** A chat bubble: conversations. */
export const MenuIcon = icon(<path d="M4 7h16M4 12h16M4 17h16" />, 'MenuIcon');

export const ChatIcon = icon(<path d="M4 5h16v11H9l-5 4V5Z" />, 'ChatIcon');
/** A key: access. */
export const KeyIcon = icon(
  <>
    <circle cx="8" cy="14" r="4" />
    <path d="m11 11 9-9M16 6l3 3M14 8l2 2" />
  </>,
  'KeyIcon',
);
/** A laptop: device. */
export const DeviceIcon = icon(
  <>
    <rect x="4" y="5" width="16" height="11" rx="1.5" />
    <path d="M2 19h20" />
  </>,
  'DeviceIcon',
);
/** A broken link / offline cloud. */
export const OfflineIcon = icon(
  <>
    <path d="M7 18h10a4 4 0 0 0 .7-7.9A6 6 0 0 0 6.3 9 4.5 4.5 0 0 0 7 18Z" />
    <path d="m4 4 16 16" />
  </>,
  'OfflineIcon',
);
/** Concentric arcs: live connection. */
export const LiveIcon = icon(
  <>
    <circle cx="12" cy="12" r="2" fill="currentColor" />
    <path d="M7.8 7.8a6 6 0 0 0 0 8.4M16.2 7.8a6 6 0 0 1 0 8.4M5 5a10 10 0 0 0 0 14M19 5a10 10 0 0 1 0 14" />
  </>,
  'LiveIcon',
);
/** A clock: polling. */
export const ClockIcon = icon(
  <>
    <circle cx="12" cy="12" r="9" />
    <path d="M12 7v5l3 2" />
  </>,
  'ClockIcon',
);
/** An arrow leaving a box: opens outside the app. */
export const ExternalIcon = icon(
  <>
    <path d="M14 4h6v6M20 4l-9 9" />
    <path d="M18 14v5a1 1 0 0 1-1 1H5a1 1 0 0 1-1-1V7a1 1 0 0 1 1-1h5" />
  </>,
  'ExternalIcon',
);
/** A door with an arrow: sign out. */
export const SignOutIcon = icon(
  <>
    <path d="M15 4h4a1 1 0 0 1 1 1v14a1 1 0 0 1-1 1h-4" />
    <path d="M10 16l-4-4 4-4M6 12h10" />
  </>,
  'SignOutIcon',
);
/** Two arrows: switch account. */
export const SwitchIcon = icon(
  <>
    <path d="M4 8h13l-3-3M20 16H7l3 3" />
  </>,
  'SwitchIcon',
);
/** A gear: settings. */
export const SettingsIcon = icon(
  <>
    <circle cx="12" cy="12" r="3" />
    <path d="M19.4 15a1.7 1.7 0 0 0 .3 1.8l.1.1a2 2 0 1 1-2.8 2.8l-.1-.1a1.7 1.7 0 0 0-1.8-.3 1.7 1.7 0 0 0-1 1.5V21a2 2 0 1 1-4 0v-.1a1.7 1.7 0 0 0-1.1-1.5 1.7 1.7 0 0 0-1.8.3l-.1.1a2 2 0 1 1-2.8-2.8l.1-.1a1.7 1.7 0 0 0 .3-1.8 1.7 1.7 0 0 0-1.5-1H3a2 2 0 1 1 0-4h.1a1.7 1.7 0 0 0 1.5-1.1 1.7 1.7 0 0 0-.3-1.8l-.1-.1a2 2 0 1 1 2.8-2.8l.1.1a1.7 1.7 0 0 0 1.8.3H9a1.7 1.7 0 0 0 1-1.5V3a2 2 0 1 1 4 0v.1a1.7 1.7 0 0 0 1 1.5 1.7 1.7 0 0 0 1.8-.3l.1-.1a2 2 0 1 1 2.8 2.8l-.1.1a1.7 1.7 0 0 0-.3 1.8V9a1.7 1.7 0 0 0 1.5 1H21a2 2 0 1 1 0 4h-.1a1.7 1.7 0 0 0-1.5 1Z" />
  </>,
  'SettingsIcon',
);
